#!/usr/bin/env bash
# Installs what the real-Kafka end-to-end tests need (make e2e-deps runs it):
# Apache Kafka's jars, fetched by Maven into e2e/lib (again only when pom.xml
# changed), and kcat from Debian when it is missing. Java 17 with javac and
# Maven must be on the machine. Whatever is missing is named in one message;
# under CI (CI=true) that fails, elsewhere the tests then skip.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
if ! command -v java >/dev/null; then
  missing+=("Java 17 (no java on PATH)")
else
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  [ "${v:-0}" -ge 17 ] || missing+=("Java 17 (java on PATH is version ${v:-unknown})")
fi
command -v javac >/dev/null || missing+=("javac (a JDK 17, not only a JRE)")

stamp=lib/.pom.sha256
want=$(sha256sum pom.xml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  if command -v mvn >/dev/null; then
    echo "e2e: fetching Apache Kafka into e2e/lib with Maven"
    rm -rf lib
    mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DoutputDirectory=lib
    echo "$want" >"$stamp"
  else
    missing+=("Maven (no mvn on PATH: it fetches Apache Kafka into e2e/lib)")
  fi
fi

if ! command -v kcat >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "e2e: installing kcat with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
  else
    missing+=("kcat (apt-get install -y kcat, as root)")
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  msg="real-Kafka end-to-end tests need: $(printf '%s; ' "${missing[@]}")"
  msg=${msg%; }
  echo "e2e: $msg" >&2
  if [ "${CI:-}" = true ]; then
    exit 1
  fi
  echo "e2e: they will skip (under CI=true this fails)" >&2
fi
