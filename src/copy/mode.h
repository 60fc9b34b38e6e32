#pragma once
// COPY/ADD --chmod: an octal mode or chmod(1)'s symbolic form ("go-w", "u=rwX,go=rX"), as
// BuildKit reads it (its dchapes-mode package: BSD setmode(3) with a zero umask).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace ocib::copy {

class ModeSpec {
 public:
  ModeSpec() = default;
  /// An octal mode (the file's mode becomes it).
  ModeSpec(uint32_t octal) : octal_(octal & 07777) {}  // NOLINT(google-explicit-constructor)
  /// "0755" or a symbolic mode: clauses [ugoa]*([-+=]([rwxXst]*|[ugo]))+ separated by ','.
  /// Errors as BuildKit's: a value starting with a digit that is not octal up to 07777 is
  /// "invalid chmod parameter: 'V'. it should be octal string and between 0 and 07777";
  /// a bad symbolic one "invalid chmod parameter: 'V': invalid syntax".
  static Result<ModeSpec> parse(std::string_view text);

  /// The mode (07777 bits) a file or directory whose mode is `mode` gets. `X` adds execute
  /// permission to directories and to files that have some execute bit before the change.
  uint32_t apply(uint32_t mode, bool is_dir) const;

  /// The octal mode, when the spec is one.
  std::optional<uint32_t> octal() const { return octal_; }
  /// The symbolic text ("" for an octal spec), for cache keys.
  const std::string& symbolic() const { return text_; }

 private:
  struct Cmd {
    char op;          // '+', '-', 'X' (add if executable or a directory), 'u'/'g'/'o' (copy a class)
    uint8_t targets;  // copy: bit 0 user, 1 group, 2 other; with kSet/kClear
    uint8_t how;      // copy: kSet | kClear
    uint32_t bits;
  };
  void add(char op, uint32_t who, uint32_t arg);

  std::optional<uint32_t> octal_;
  std::string text_;
  std::vector<Cmd> cmds_;
};

}  // namespace ocib::copy
