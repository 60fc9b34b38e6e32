#include "solver/emulation.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/fs.h"
#include "oci/platform.h"

namespace ocib::solver {

namespace {

// ELF identification of an architecture's executables: class (1 = 32-bit, 2 = 64-bit), data
// (1 = little, 2 = big endian), e_machine; and the name qemu-user uses for it.
struct ElfId {
  unsigned char cls, data;
  uint16_t machine;
  const char* qemu;
};

std::optional<ElfId> elf_id(const oci::Platform& p) {
  static const std::map<std::string, ElfId> ids = {
      {"amd64", {2, 1, 62, "x86_64"}},     {"386", {1, 1, 3, "i386"}},          {"arm64", {2, 1, 183, "aarch64"}},
      {"arm", {1, 1, 40, "arm"}},          {"riscv64", {2, 1, 243, "riscv64"}}, {"s390x", {2, 2, 22, "s390x"}},
      {"ppc64le", {2, 1, 21, "ppc64le"}},  {"ppc64", {2, 2, 21, "ppc64"}},      {"mips64le", {2, 1, 8, "mips64el"}},
      {"mips64", {2, 2, 8, "mips64"}},     {"loong64", {2, 1, 258, "loongarch64"}}};
  auto it = ids.find(oci::normalize(p).architecture);
  if (it == ids.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> unhex(const std::string& h) {
  if (h.size() % 2) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < h.size(); i += 2) {
    char* end = nullptr;
    std::string byte = h.substr(i, 2);
    long v = std::strtol(byte.c_str(), &end, 16);
    if (*end) return std::nullopt;
    out.push_back(static_cast<char>(v));
  }
  return out;
}

}  // namespace

// A RUN for a foreign architecture executes its binaries through a binfmt_misc handler
// (qemu-user). It must have the F (fix-binary) flag: the kernel then opens the interpreter at
// registration, so it works inside the step's root, where the host's /usr/bin is not visible.
Status check_emulation(const oci::Platform& p) {
  const std::string dir = "/proc/sys/fs/binfmt_misc";
  std::string arch = oci::str(oci::normalize(p));
  auto id = elf_id(p);
  if (!id) return Error(Errc::kUnsupported, "cannot run RUN steps for " + arch + ": ocib does not know its executable format");
  std::string how =
      "register qemu-user for it with the F (fix-binary) flag, e.g. as root: `apt-get install qemu-user-static` "
      "(Debian/Ubuntu register qemu-" + std::string(id->qemu) + " through systemd-binfmt or binfmt-support: "
      "`systemctl restart systemd-binfmt` or `update-binfmts --enable qemu-" + id->qemu +
      "`), or write its line from /usr/lib/binfmt.d/qemu-" + id->qemu + ".conf to " + dir +
      "/register (mount it first with `mount -t binfmt_misc binfmt_misc " + dir +
      "`). Stages that only need the build machine can use FROM --platform=$BUILDPLATFORM";
  auto status = fs::read_file(dir + "/status");
  if (!status.ok())
    return Error(Errc::kUnsupported, "RUN for " + arch + " needs emulation, but binfmt_misc is not mounted at " + dir +
                                         "; " + how);
  if (status->rfind("enabled", 0) != 0)
    return Error(Errc::kUnsupported, "RUN for " + arch + " needs emulation, but binfmt_misc is disabled (" + dir +
                                         "/status); enable it with `echo 1 > " + dir + "/status`");
  // What a typical executable's ELF header starts with (e_type EXEC), to match each handler's
  // magic and mask against.
  std::string hdr(20, '\0');
  hdr[0] = 0x7f, hdr[1] = 'E', hdr[2] = 'L', hdr[3] = 'F';
  hdr[4] = static_cast<char>(id->cls), hdr[5] = static_cast<char>(id->data), hdr[6] = 1;
  bool le = id->data == 1;
  hdr[le ? 16 : 17] = 2;
  hdr[le ? 18 : 19] = static_cast<char>(id->machine & 0xff);
  hdr[le ? 19 : 18] = static_cast<char>(id->machine >> 8);
  std::vector<std::string> entries;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) entries.push_back(e.path().filename());
  if (ec) return Error(Errc::kIo, "list " + dir + ": " + ec.message());
  std::string without_f;
  for (const auto& name : entries) {
    if (name == "status" || name == "register") continue;
    auto text = fs::read_file(fs::join(dir, name));
    if (!text.ok()) continue;
    std::map<std::string, std::string> f;
    size_t pos = 0;
    while (pos < text->size()) {
      size_t end = text->find('\n', pos);
      if (end == std::string::npos) end = text->size();
      std::string line = text->substr(pos, end - pos);
      pos = end + 1;
      auto sp = line.find(' ');
      if (line == "enabled" || line == "disabled") f["state"] = line;
      else if (sp != std::string::npos) f[line.substr(0, sp)] = line.substr(sp + 1);
    }
    if (f["state"] != "enabled" || f.count("magic") == 0 || (f.count("offset") && f["offset"] != "0")) continue;
    auto magic = unhex(f["magic"]);
    auto mask = f.count("mask") ? unhex(f["mask"]) : std::optional<std::string>(std::string(magic ? magic->size() : 0, '\xff'));
    if (!magic || !mask || magic->size() > hdr.size() || mask->size() < magic->size()) continue;
    bool match = true;
    for (size_t i = 0; i < magic->size() && match; ++i) match = (hdr[i] & (*mask)[i]) == (*magic)[i];
    if (!match) continue;
    if (f["flags:"].find('F') != std::string::npos) return {};
    without_f = name + " (" + f["interpreter"] + ")";
  }
  if (!without_f.empty())
    return Error(Errc::kUnsupported, "RUN for " + arch + " needs emulation: the binfmt_misc handler " + without_f +
                                         " lacks the F (fix-binary) flag, so its interpreter cannot be found inside "
                                         "the build's root; " + how);
  return Error(Errc::kUnsupported, "RUN for " + arch + " needs emulation: no binfmt_misc handler for " + id->qemu +
                                       " executables is registered on this host; " + how);
}

}  // namespace ocib::solver
