"""Build macros for TensorFlow Serving in Python.

serving_proto_library compiles one .proto file to Python at build time with
grpc_tools.protoc (through //tools/proto:gen_py_proto) and wraps the result in
a py_library, so that code imports it as upstream's clients do:

    from tensorflow_serving.apis import predict_pb2

For `serving_proto_library(name = "predict_proto", ...)` it defines:
  predict_proto         the generated files (and the .proto sources that
                        dependent protos need to compile)
  predict_py_pb2        py_library with predict_pb2.py (and, with
                        has_services, predict_pb2_grpc.py)
"""

ServingProtoInfo = provider(
    doc = "The .proto sources of a serving_proto_library and its deps.",
    fields = {"transitive_sources": "depset of .proto Files"},
)

def _py_proto_gen_impl(ctx):
    src = ctx.file.src
    stem = src.basename[:-len(".proto")]
    outputs = [ctx.actions.declare_file(stem + "_pb2.py")]
    if ctx.attr.has_services:
        outputs.append(ctx.actions.declare_file(stem + "_pb2_grpc.py"))
    transitive = depset(
        [src],
        transitive = [d[ServingProtoInfo].transitive_sources for d in ctx.attr.deps],
    )
    args = ctx.actions.args()
    args.add("--out=" + ctx.bin_dir.path)
    if ctx.attr.has_services:
        args.add("--grpc")
    args.add(src.path)
    ctx.actions.run(
        executable = ctx.executable._protoc,
        arguments = [args],
        inputs = transitive,
        outputs = outputs,
        mnemonic = "ServingProtoPy",
        progress_message = "Compiling %s to Python" % src.short_path,
        use_default_shell_env = True,
    )
    return [
        DefaultInfo(files = depset(outputs)),
        ServingProtoInfo(transitive_sources = transitive),
    ]

_py_proto_gen = rule(
    implementation = _py_proto_gen_impl,
    attrs = {
        "src": attr.label(allow_single_file = [".proto"], mandatory = True),
        "deps": attr.label_list(providers = [ServingProtoInfo]),
        "has_services": attr.bool(default = False),
        "_protoc": attr.label(
            default = Label("//tools/proto:gen_py_proto"),
            executable = True,
            cfg = "exec",
        ),
    },
)

def _py_name(proto_label):
    """predict_proto -> predict_py_pb2 (also for labels with a package)."""
    if not proto_label.endswith("_proto"):
        fail("serving_proto_library deps must be named *_proto: " + proto_label)
    return proto_label[:-len("_proto")] + "_py_pb2"

def serving_proto_library(
        name,
        srcs,
        deps = [],
        has_services = False,
        visibility = None,
        testonly = None):
    """A .proto file compiled to Python; see the file docstring.

    Args:
      name: must end in `_proto`.
      srcs: exactly one .proto file.
      deps: other serving_proto_library targets (by their `_proto` name) that
        the file imports. TensorFlow's own protos need no dep: they come from
        the installed tensorflow package.
      has_services: the file defines gRPC services; also emit *_pb2_grpc.py.
      visibility: as usual.
      testonly: as usual.
    """
    if len(srcs) != 1:
        fail("serving_proto_library takes exactly one .proto in srcs")
    _py_proto_gen(
        name = name,
        src = srcs[0],
        deps = deps,
        has_services = has_services,
        visibility = visibility,
        testonly = testonly,
    )
    native.py_library(
        name = _py_name(name),
        srcs = [":" + name],
        srcs_version = "PY3",
        deps = [_py_name(d) for d in deps],
        visibility = visibility,
        testonly = testonly,
    )

def all_py_pb2_library(name = "all_py_pb2", visibility = None):
    """A py_library of every *_py_pb2 that this BUILD file declared before it.

    Call it last in a BUILD file of serving_proto_library targets. The pip
    package (//tensorflow_serving/tools/pip_package) depends on it, so a proto
    added above it is packaged with no list to keep in step;
    pip_package_protos_test fails if a .proto was left out.

    Args:
      name: the target's name.
      visibility: as usual.
    """
    deps = sorted([
        ":" + rule_name
        for rule_name, rule in native.existing_rules().items()
        if rule["kind"] == "py_library" and rule_name.endswith("_py_pb2")
    ])
    native.py_library(
        name = name,
        srcs_version = "PY3",
        deps = deps,
        visibility = visibility,
    )
