#!/bin/sh
# The scenario's vault password (ANSIBLE_VAULT_PASSWORD_FILE runs this): random, made once per molecule
# ephemeral directory into a 0600 file, printed for ansible. Nothing in the repository holds it.
set -eu
file="${MOLECULE_EPHEMERAL_DIRECTORY:?}/vault-pass"
if [ ! -s "$file" ]; then
  umask 077
  python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > "$file.tmp.$$"
  mv "$file.tmp.$$" "$file"
fi
cat "$file"
