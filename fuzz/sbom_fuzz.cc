// libFuzzer target: the SBOM scanner's parsers read bytes from the image being built (a hostile
// base image chooses them) and must not crash, read out of bounds, leak or hit UB on any input.
// The first byte picks the parser; the rest is its input. See fuzz/README.md.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "exporter/sbom.h"

using namespace ocib::exporter;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // An exact-size heap copy: a read past the input is an ASan report.
  const std::string in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 8) {
    case 0: {
      if (auto h = parse_rpm_header(in)) (void)h->name.size();
      break;
    }
    case 1: {
      ReadAt rd = [&in](uint64_t off, size_t n, std::string& out) {
        if (off > in.size() || n > in.size() - off) return false;
        out.assign(in, static_cast<size_t>(off), n);
        return true;
      };
      std::string note;
      if (auto bi = read_go_buildinfo(in.size(), rd, &note)) (void)bi->deps.size();
      break;
    }
    case 2: {
      auto nl = in.find('\n');
      auto bi =
          parse_go_modinfo(in.substr(0, nl), nl == std::string::npos ? "" : in.substr(nl + 1));
      for (const auto& m : bi.deps)
        (void)Package{"golang", m.path, m.version, "", "", "", ""}.purl();
      break;
    }
    case 3:
      if (auto p = parse_package_json(in)) (void)p->purl();
      for (const auto& p : parse_package_lock(in)) (void)p.purl();
      break;
    case 4:
      if (auto p = parse_python_metadata(in)) (void)p->purl();
      break;
    case 5:
      for (const auto& p : parse_dpkg_status(in, "debian")) (void)p.purl();
      for (const auto& p : parse_apk_installed(in, "alpine")) (void)p.purl();
      (void)os_release_id(in);
      break;
    case 6: {
      size_t bad = 0;
      // Only inputs that look like an SQLite file reach sqlite's own (fuzzed) parser.
      if (in.size() >= 100)
        (void)read_rpmdb_sqlite("SQLite format 3" + std::string(1, '\0') + in.substr(16), &bad);
      break;
    }
    default:
      (void)report_from_json(nlohmann::json::parse(in, nullptr, false));
      break;
  }
  return 0;
}
