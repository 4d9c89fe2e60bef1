#!/bin/sh
# Stand-in for Bazel's coverage tools, which cannot be downloaded offline.
echo "coverage is not available in this offline Bazel setup" >&2
exit 0
