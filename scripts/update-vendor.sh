#!/usr/bin/env bash
# Re-fetch the dashboard's vendored JavaScript and CSS from the npm registry and check them.
#
#   scripts/update-vendor.sh                  fetch every package at the version of
#                                             linnix/ui/static/vendor/MANIFEST.json, check the
#                                             tarball against the registry's integrity and each
#                                             file against its sha256; fail on any difference
#   scripts/update-vendor.sh uplot@1.6.33     move a package to another version: fetch it,
#                                             check the tarball, write the files and record the
#                                             new version, integrity and sha256 in the manifest
#
# Only this script touches the network: the agent serves the committed files and fetches
# nothing at run time.  Needs curl and python3.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
vendor="$here/linnix/ui/static/vendor"
registry=${NPM_REGISTRY:-https://registry.npmjs.org}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$vendor" "$registry" "$work" "$@" <<'PY'
import base64, hashlib, io, json, os, sys, tarfile, urllib.request

vendor, registry, work, *bumps = sys.argv[1:]
manifest_path = os.path.join(vendor, "MANIFEST.json")
with open(manifest_path) as f:
    manifest = json.load(f)
wanted = dict(b.rsplit("@", 1) for b in bumps)
unknown = set(wanted) - {p["name"] for p in manifest["packages"]}
if unknown:
    sys.exit(f"update-vendor: not in the manifest: {', '.join(sorted(unknown))}")


def fetch(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


failed = False
for package in manifest["packages"]:
    name = package["name"]
    bump = name in wanted
    version = wanted.get(name, package["version"])
    meta = json.loads(fetch(f"{registry}/{name}/{version}"))
    integrity = meta["dist"]["integrity"]
    tarball = fetch(meta["dist"]["tarball"])
    algo, _, digest = integrity.partition("-")
    if algo != "sha512" or base64.b64encode(hashlib.sha512(tarball).digest()).decode() != digest:
        sys.exit(f"update-vendor: {name}@{version}: the tarball does not match the "
                 f"registry's integrity {integrity}")
    if not bump and integrity != package["integrity"]:
        print(f"{name}@{version}: the registry's integrity {integrity} differs from the "
              f"manifest's {package['integrity']}")
        failed = True
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for dest, entry in package["files"].items():
            member = tar.extractfile(entry["from"])
            if member is None:
                sys.exit(f"update-vendor: {name}@{version} has no {entry['from']}")
            data = member.read()
            sha = hashlib.sha256(data).hexdigest()
            if bump:
                entry["sha256"] = sha
            elif sha != entry["sha256"]:
                print(f"{name}@{version}: {entry['from']} has sha256 {sha}, the manifest "
                      f"says {entry['sha256']}")
                failed = True
                continue
            with open(os.path.join(vendor, dest), "wb") as out:
                out.write(data)
            print(f"{name}@{version}: {dest} {sha}")
    if bump:
        package["version"], package["integrity"] = version, integrity
if failed:
    sys.exit("update-vendor: the fetched files differ from the manifest (nothing was recorded)")
if wanted:
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"update-vendor: {manifest_path} updated")
PY
