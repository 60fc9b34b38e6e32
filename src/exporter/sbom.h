#pragma once
// The SBOM scanner (--sbom): the packages of an image's merged filesystem, as BuildKit's syft
// scanner catalogs an image: dpkg's status (and distroless status.d), apk's installed db, the
// rpm sqlite db, Go binaries' build info, installed npm packages (node_modules/**/package.json)
// and installed Python distributions (*.dist-info/METADATA, *.egg-info).
//
// The walk takes a directory fd of the merged view (the exporter runs it inside the sandbox
// over a read-only overlay of the final image's layers, so whiteouts and opaque directories are
// the kernel's and files of subordinate ids are readable rootless). It never follows a symlink,
// reads only the files it recognises by path or (for ELF) by exec bit and magic, and bounds what
// it reads. Every parser takes bytes from the image: hostile input yields nothing or a note,
// never a crash or an out-of-bounds read.

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace ocib::exporter {

/// One package of the final filesystem for the SBOM.
struct Package {
  std::string type;  // "deb", "apk", "rpm", "golang", "npm", "pypi"
  std::string name, version, arch, distro;
  std::string epoch;     // rpm only ("" = none)
  std::string location;  // the image file it was read from ("/var/lib/dpkg/status")

  /// The package URL (pkg:deb/debian/bash@5.2?arch=amd64, pkg:npm/%40scope/x@1.0, ...).
  std::string purl() const;
  /// SPDX versionInfo: the version, for rpm [EPOCH:]VERSION-RELEASE as rpm prints it.
  std::string version_info() const;
};

/// What the walk cost.
struct ScanStats {
  uint64_t dirs = 0, entries = 0;
  uint64_t executables = 0;  // regular files with an exec bit whose magic was read
  uint64_t elf = 0;          // of those, ELF files whose headers were read
  uint64_t files_read = 0;   // recognised metadata files read
  uint64_t bytes_read = 0;
  int64_t millis = 0;
};

struct ScanReport {
  std::vector<Package> packages;   // sorted by type, name, version, location
  std::vector<std::string> notes;  // what was seen but not read (unsupported formats, caps hit)
  ScanStats stats;
};

/// Scans the merged filesystem whose root is the directory `root_fd` (O_PATH is fine).
ScanReport scan_image(int root_fd);

/// The report as the sandboxed scan hands it back, and back again (missing fields are empty).
nlohmann::json report_to_json(const ScanReport& r);
ScanReport report_from_json(const nlohmann::json& j);
/// "12034 entries in 1501 directories, 40 executables (3 ELF), 5 files (2.1 MiB) read, 180 ms".
std::string describe_stats(const ScanStats& s);

// ---- the parsers (bytes in, packages out; exposed for the unit tests) ----------------------

/// The ID of an os-release file ("debian", "fedora"), "" when it has none.
std::string os_release_id(std::string_view text);

/// dpkg's status file (or one distroless status.d file): installed packages only.
std::vector<Package> parse_dpkg_status(std::string_view text, const std::string& distro);
/// apk's lib/apk/db/installed.
std::vector<Package> parse_apk_installed(std::string_view text, const std::string& distro);

/// One rpm header as the sqlite rpmdb stores it (Packages.blob): int32 BE index count, int32 BE
/// data size, the 16-byte index entries (tag, type, offset, count), then the data store.
struct RpmHeader {
  std::string name, version, release, arch;
  std::optional<uint32_t> epoch;
};
/// nullopt for anything malformed: counts out of range, an entry pointing outside the data
/// store, a string without its NUL, a missing NAME or VERSION.
std::optional<RpmHeader> parse_rpm_header(std::string_view blob);
/// The headers of an rpmdb.sqlite file's bytes (opened in memory, read-only, no WAL, defensive,
/// bounded work); rows whose header does not parse are counted in `*bad`.
Result<std::vector<RpmHeader>> read_rpmdb_sqlite(std::string bytes, size_t* bad);

/// A Go binary's build info (Go >= 1.18 inline format) and its modules.
struct GoModule {
  std::string path, version, sum;
};
struct GoBuildInfo {
  std::string go_version;  // "go1.21.5"
  std::string path;        // the main package's path
  std::optional<GoModule> main;
  std::vector<GoModule> deps;  // replacements applied (see parse_go_modinfo)
};
/// Reads `n` bytes at `off` into `out`; false when they are not all there.
using ReadAt = std::function<bool(uint64_t off, size_t n, std::string& out)>;
/// The build info of the ELF file of `size` bytes that `read` reads: the .go.buildinfo section
/// (an ELF whose section headers lack it is not Go), or, without section headers (sstrip), the
/// first writable non-executable PT_LOAD segment, searched for the "\xff Go buildinf:" magic
/// (16-byte aligned; the section's first 64 KiB, a segment's first 4 MiB, in 64 KiB reads),
/// then the varint-prefixed version and modinfo strings (each at most 4 MiB). nullopt: not ELF,
/// not Go, or malformed. `*note` says why a Go binary was not read (the pre-1.18 pointer format).
std::optional<GoBuildInfo> read_go_buildinfo(uint64_t size, const ReadAt& read, std::string* note);
/// The modinfo string (sentinels stripped when present): "path", "mod", "dep", "=>" lines.
/// A "=>" line replaces the module before it when it names a versioned module (a local
/// directory replacement keeps the original path and version).
GoBuildInfo parse_go_modinfo(std::string_view go_version, std::string_view modinfo);

/// An installed package's package.json (name and version both required).
std::optional<Package> parse_package_json(std::string_view text);
/// package-lock.json: lockfileVersion 2/3 "packages" ("node_modules/NAME" keys, links and the
/// root project skipped), else v1 "dependencies" (recursively).
std::vector<Package> parse_package_lock(std::string_view text);
/// A Python distribution's METADATA / PKG-INFO headers (Name:, Version:).
std::optional<Package> parse_python_metadata(std::string_view text);

}  // namespace ocib::exporter
