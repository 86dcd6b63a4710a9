#!/usr/bin/env bash
# The test command of the README: every unit, integration and doc test, in release mode (the
# engine tests simulate weeks of tissue and are slow unoptimised). The report test installs
# Debian's chromium when it is missing and the user is root; otherwise it says it is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --all-targets
cargo test --release --doc
