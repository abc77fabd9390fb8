#!/bin/sh
# Entrypoint of the tensorflow-serving-py image: upstream's tensorflow/serving
# command line, with exec so that the server is PID 1 and receives SIGTERM
# (upstream's script runs it as a child of the shell, which never forwards the
# signal). Arguments given to `podman run IMAGE ...` are appended.
exec tensorflow_model_server --port="${GRPC_PORT}" --rest_api_port="${PORT}" \
  --model_name="${MODEL_NAME}" \
  --model_base_path="${MODEL_BASE_PATH}/${MODEL_NAME}" "$@"
