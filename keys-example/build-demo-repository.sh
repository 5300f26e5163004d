#!/bin/sh
# Builds the tuf-crates demo repository with tuf-signer: the whole key ceremony of
# keys-example/README.md, one command per step, each printed before it runs.
#
# Usage: keys-example/build-demo-repository.sh [OUT_DIR]
#
#   OUT_DIR     the repository directory to create (default: a new temporary
#               directory); it must not hold a repository already. Clients read
#               OUT_DIR/published/metadata and OUT_DIR/published/targets.
#   TUF_SIGNER  the tuf-signer binary to run (default: `cargo run -q -p signer-cli --`
#               in this workspace).
#
# The keys in keys-example/keys are public demo keys: NEVER use them for anything but
# this demo. Works from any current directory.
set -eu

here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
workspace=$(CDPATH='' cd -- "$here/.." && pwd)

if [ "$#" -gt 1 ]; then
    echo "usage: $0 [OUT_DIR]" >&2
    exit 2
fi
if [ "$#" -eq 1 ] && [ -n "$1" ]; then
    mkdir -p -- "$1"
    repo=$(CDPATH='' cd -- "$1" && pwd)
else
    repo=$(mktemp -d "${TMPDIR:-/tmp}/tuf-crates-demo.XXXXXX")
fi

# The demo keys' passphrase. It is public: see keys-example/README.md.
TUF_DEMO_PASSPHRASE=tuf-crates-demo-NOT-SECRET
export TUF_DEMO_PASSPHRASE

# Key and crate paths below are relative to keys-example/.
cd "$here"

# An argument as the shell would need it typed.
quote() {
    case $1 in
        '' | *[!A-Za-z0-9_./:=@%+,-]*)
            printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
            ;;
        *)
            printf '%s' "$1"
            ;;
    esac
}

# Prints a step's explanation.
step() {
    printf '\n### %s\n' "$*"
}

# Prints `tuf-signer ARGS...`, then runs it.
tuf_signer() {
    printf '$ tuf-signer'
    for arg in "$@"; do
        printf ' %s' "$(quote "$arg")"
    done
    printf '\n'
    if [ -n "${TUF_SIGNER:-}" ]; then
        "$TUF_SIGNER" "$@"
    else
        cargo run -q --manifest-path "$workspace/Cargo.toml" -p signer-cli -- "$@"
    fi
}

printf 'building the demo repository in %s\n' "$repo"
printf '(from %s; key passphrases from $TUF_DEMO_PASSPHRASE)\n' "$here"

step "1. Create the repository: root 2-of-3, targets, one online key, 16 fallback bins."
tuf_signer -C "$repo" init \
    --root-key keys/root-1.pub.json \
    --root-key keys/root-2.pub.json \
    --root-key keys/root-3.pub.json \
    --root-threshold 2 \
    --targets-key keys/targets.pub.json \
    --online-key keys/online.pub.json \
    --bin-bits 4

step "2. Two of the three root key holders sign root v1."
tuf_signer -C "$repo" --passphrase-env TUF_DEMO_PASSPHRASE sign --key keys/root-1.pem --role root --yes
tuf_signer -C "$repo" --passphrase-env TUF_DEMO_PASSPHRASE sign --key keys/root-2.pem --role root --yes

step "3. The targets key holder signs targets v1."
tuf_signer -C "$repo" --passphrase-env TUF_DEMO_PASSPHRASE sign --key keys/targets.pem --role targets --yes

step "4. Publish: the online key signs the fallback role, its bins, snapshot and timestamp."
tuf_signer -C "$repo" --passphrase-env TUF_DEMO_PASSPHRASE publish --online-key keys/online.pem

step "5. Delegate the namespace tufdemo to its maintainer's key."
tuf_signer -C "$repo" namespace delegate tufdemo --key keys/maintainer-tufdemo.pub.json

step "6. The targets key holder signs the new delegation (targets v2)."
tuf_signer -C "$repo" --passphrase-env TUF_DEMO_PASSPHRASE sign --key keys/targets.pem --role targets --yes

step "7. Stage the four demo releases: tufdemo goes to ns-tufdemo, the others to the fallback bins. The tufdemo maintainer (alice) attests her releases and unclaimed-app-helper as their author; carol attests unclaimed-util."
tuf_signer -C "$repo" --passphrase-env TUF_DEMO_PASSPHRASE release add \
    crates/tufdemo-0.1.0.crate \
    crates/tufdemo-0.2.0.crate \
    --attest-key keys/maintainer-tufdemo.pem
tuf_signer -C "$repo" --passphrase-env TUF_DEMO_PASSPHRASE release add \
    crates/unclaimed-app-helper-0.3.0.crate \
    --attest-key keys/maintainer-tufdemo.pem
# carol, whom the demo policy (policy.toml) does not trust, released unclaimed-util.
tuf_signer -C "$repo" --passphrase-env TUF_DEMO_PASSPHRASE release add \
    crates/unclaimed-util-1.0.0.crate \
    --attest-key keys/developer-carol.pem

step "8. A reviewer (bob) reviews tufdemo 0.2.0 with his own key; the owners yank tufdemo 0.1.0."
tuf_signer -C "$repo" --passphrase-env TUF_DEMO_PASSPHRASE release attest tufdemo 0.2.0 --key keys/reviewer-bob.pem
tuf_signer -C "$repo" release yank tufdemo 0.1.0

step "9. The tufdemo maintainer signs ns-tufdemo (the releases, their signed index file, the attestations and the yank)."
tuf_signer -C "$repo" --passphrase-env TUF_DEMO_PASSPHRASE sign --key keys/maintainer-tufdemo.pem --role ns-tufdemo --yes

step "10. Publish: targets v2, ns-tufdemo v1, the changed bins, snapshot and timestamp."
tuf_signer -C "$repo" status
tuf_signer -C "$repo" --passphrase-env TUF_DEMO_PASSPHRASE publish --online-key keys/online.pem

step "11. Verify the published repository as a client would, tarballs included."
tuf_signer -C "$repo" verify

printf '\ndone: the demo repository is %s\n' "$repo"
printf 'serve %s/published/metadata and %s/published/targets\n' "$repo" "$repo"
