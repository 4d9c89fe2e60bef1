"""rules_proto for Bazel 4, offline: the native proto rules under their rules_proto names."""

def proto_lang_toolchain(**attrs):
    native.proto_lang_toolchain(**attrs)

def proto_library(**attrs):
    native.proto_library(**attrs)
