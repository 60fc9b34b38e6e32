#!/usr/bin/env python3
"""Writes the hostile JSON document corpus (see README.md, "Hostile documents").

    gen_hostile_docs.py OUTDIR

OUTDIR/cases.tsv lists one case a line: KIND<TAB>PATH<TAB>EXPECT, where KIND says how ocib
reads PATH and EXPECT is a fixed string its error message must contain:

  layout   an OCI layout directory, given as --build-context base=oci-layout://PATH
  archive  an oci-archive tarball, given to `ocib import PATH hostile:1`
  cache    a local cache directory (PATH/ocib-cache.json), given as
           --cache-from type=local,src=PATH

Every case must fail cleanly: exit status 1 or 2 (not 134, an uncaught exception, or 139, a
stack overflow) with EXPECT in the message.
"""

import hashlib
import io
import json
import os
import platform
import sys
import tarfile

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
REF = "org.opencontainers.image.ref.name"

# Deeper than any limit ocib has (oci::kMaxIndexDepth = 8, oci::kMaxJsonDepth = 100) and deep
# enough to overflow a recursive walker's stack.
CHAIN = 20000
DEEP_JSON = 100000


def digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def dumps(j):
    return json.dumps(j, separators=(",", ":")).encode() if not isinstance(j, bytes) else j


class Layout:
    """An OCI layout in memory: blobs and an index.json (any bytes)."""

    def __init__(self):
        self.blobs = {}
        self.index = b""

    def blob(self, j):
        b = dumps(j)
        d = digest(b)
        self.blobs[d] = b
        return {"mediaType": MANIFEST, "digest": d, "size": len(b)}

    def good_image(self):
        """A valid one-layer image; returns its manifest descriptor."""
        cfg = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        c = self.blob(cfg)
        c["mediaType"] = CONFIG
        return self.blob({"schemaVersion": 2, "mediaType": MANIFEST, "config": c, "layers": []})

    def write_dir(self, path):
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        with open(os.path.join(path, "index.json"), "wb") as f:
            f.write(self.index)
        for d, b in self.blobs.items():
            with open(os.path.join(path, "blobs", "sha256", d[7:]), "wb") as f:
                f.write(b)

    def write_tar(self, path):
        with tarfile.open(path, "w") as t:
            def add(name, data):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            for d, b in sorted(self.blobs.items()):
                add("blobs/sha256/" + d[7:], b)
            add("index.json", self.index)


def index_of(*entries):
    return {"schemaVersion": 2, "mediaType": INDEX, "manifests": list(entries)}


def layout_cases():
    """(name, Layout, expect) for both the layout and the archive readers."""
    out = []

    def case(name, expect, build):
        lay = Layout()
        build(lay)
        out.append((name, lay, expect))

    def raw_index(j):
        return lambda lay: setattr(lay, "index", dumps(j))

    case("manifests-number", '"manifests"[0]', raw_index({"manifests": [1]}))
    case("manifests-object", '"manifests" is not an array', raw_index({"manifests": {}}))
    case("manifests-missing", 'no "manifests" array', raw_index({"schemaVersion": 2}))
    case("index-array", "index is not a JSON object", raw_index([1, 2]))
    case("index-not-json", "not valid JSON", lambda lay: setattr(lay, "index", b"{\"manifests\":[")
         )
    case("index-deep-json", "nested deeper than 100",
         lambda lay: setattr(lay, "index", b'{"manifests":' + b"[" * DEEP_JSON + b"]" * DEEP_JSON + b"}"))
    case("digest-number", '"digest": not a string',
         raw_index({"manifests": [{"mediaType": MANIFEST, "digest": 5, "size": 1}]}))
    case("size-string", "missing or bad size",
         raw_index({"manifests": [{"mediaType": MANIFEST, "digest": digest(b"x"), "size": "1"}]}))
    case("media-type-object", '"mediaType": not a string',
         raw_index({"manifests": [{"mediaType": {}, "digest": digest(b"x"), "size": 1}]}))
    case("annotations-string", '"annotations": not an object',
         raw_index({"manifests": [{"mediaType": MANIFEST, "digest": digest(b"x"), "size": 1,
                                   "annotations": "latest"}]}))
    case("ref-name-number", '"annotations": non-string value',
         raw_index({"manifests": [{"mediaType": MANIFEST, "digest": digest(b"x"), "size": 1,
                                   "annotations": {REF: 7}}]}))

    def manifest_with(field, value):
        def build(lay):
            good = lay.good_image()
            m = json.loads(lay.blobs[good["digest"]])
            m[field] = value
            lay.index = dumps(index_of(lay.blob(m)))
        return build

    case("manifest-config-string", "descriptor: not a JSON object", manifest_with("config", "x"))
    case("manifest-layers-object", '"layers" is not an array', manifest_with("layers", {}))
    case("manifest-layer-number", '"layers"[0]', manifest_with("layers", [1]))
    case("manifest-layer-digest-list", '"digest": not a string',
         manifest_with("layers", [{"mediaType": LAYER, "digest": ["sha256:0"], "size": 1}]))
    case("manifest-media-type-number", '"mediaType": not a string', manifest_with("mediaType", 2))

    def nested_index_entry(lay):
        lay.index = dumps(index_of(lay.blob(index_of(7))))
    case("nested-index-entry-number", '"manifests"[0]', nested_index_entry)

    # Every level names the host's platform, so each one is followed until the depth limit.
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())

    def chain(lay):
        d = lay.good_image()
        d["platform"] = {"architecture": arch, "os": "linux"}
        for _ in range(CHAIN):
            d = lay.blob(index_of(d))
            d["mediaType"] = INDEX
            d["platform"] = {"architecture": arch, "os": "linux"}
        lay.index = dumps(index_of(d))
    case("index-chain-20000", "nested deeper than 8 levels", chain)
    return out


def cache_cases():
    key = "a" * 64
    good = {"digest": digest(b"l"), "diff_id": digest(b"d"), "media_type": LAYER, "size": 1,
            "created": 0, "name": "RUN x"}

    def entry(**kw):
        e = dict(good)
        e.update(kw)
        return {"version": "ocib-cache-v1", "entries": {key: e}}

    return [
        ("digest-number", entry(digest=1), '"digest" is not a string'),
        ("diff-id-null-list", entry(diff_id=[None]), '"diff_id" is not a string'),
        ("media-type-bool", entry(media_type=True), '"media_type" is not a string'),
        ("name-object", entry(name={}), '"name" is not a string'),
        ("size-string", entry(size="1"), '"size" is not an integer'),
        ("created-float", entry(created=1.5), '"created" is not an integer'),
        ("entry-array", {"version": "ocib-cache-v1", "entries": {key: [1]}}, "bad cache entry"),
        ("entries-array", {"version": "ocib-cache-v1", "entries": [1]}, 'no "entries" object'),
        ("top-array", [1], 'no "entries" object'),
        ("deep-json", b"[" * DEEP_JSON + b"]" * DEEP_JSON, "nested deeper than 100"),
    ]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    lines = []
    for name, lay, expect in layout_cases():
        d = os.path.join(out, "layout", name)
        lay.write_dir(d)
        lines.append(("layout", d, expect))
        tar = os.path.join(out, "archive", name + ".tar")
        os.makedirs(os.path.dirname(tar), exist_ok=True)
        lay.write_tar(tar)
        lines.append(("archive", tar, expect))
    for name, doc, expect in cache_cases():
        d = os.path.join(out, "cache", name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "ocib-cache.json"), "wb") as f:
            f.write(dumps(doc))
        lines.append(("cache", d, expect))
    with open(os.path.join(out, "cases.tsv"), "w") as f:
        for kind, path, expect in lines:
            f.write(f"{kind}\t{path}\t{expect}\n")


if __name__ == "__main__":
    main()
