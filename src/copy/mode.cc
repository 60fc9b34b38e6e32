#include "copy/mode.h"

namespace ocib::copy {
namespace {

constexpr uint32_t kSetuid = 04000, kSetgid = 02000, kSticky = 01000;
constexpr uint32_t kUser = 0700, kGroup = 0070, kOther = 0007;
constexpr uint32_t kStandard = kSetuid | kSetgid | kUser | kGroup | kOther;  // what `a` and `=` cover
constexpr uint8_t kSet = 1, kClear = 2;

}  // namespace

void ModeSpec::add(char op, uint32_t who, uint32_t arg) {
  switch (op) {
    case '=':
      // Clear what `who` names (everything but the sticky bit when no one is named), then add.
      cmds_.push_back({'-', 0, 0, who ? who : kStandard});
      op = '+';
      [[fallthrough]];
    case '+':
    case '-':
    case 'X':
      cmds_.push_back({op, 0, 0, who ? who & arg : arg});
      return;
    default: {  // 'u', 'g', 'o': copy that class's bits into the classes `who` names
      Cmd c{op, 0, 0, ~0u};
      c.targets = who ? static_cast<uint8_t>((who & 0400 ? 1 : 0) | (who & 0040 ? 2 : 0) | (who & 0004 ? 4 : 0)) : 7;
      c.how = arg == '+' ? kSet : arg == '-' ? kClear : kSet | kClear;
      cmds_.push_back(c);
    }
  }
}

Result<ModeSpec> ModeSpec::parse(std::string_view text) {
  const std::string shown(text);
  if (!text.empty() && text[0] >= '0' && text[0] <= '9') {
    uint64_t v = 0;
    bool ok = true;
    for (char c : text) {
      if (c < '0' || c > '7' || v > 07777) {
        ok = false;
        break;
      }
      v = v * 8 + static_cast<uint64_t>(c - '0');
    }
    if (!ok || v > 07777)
      return Error::invalid("invalid chmod parameter: '" + shown + "'. it should be octal string and between 0 and 07777");
    return ModeSpec(static_cast<uint32_t>(v));
  }
  Error syntax = Error::invalid("invalid chmod parameter: '" + shown + "': invalid syntax");
  ModeSpec m;
  m.text_ = shown;
  std::string_view s = text;
  for (;;) {
    uint32_t who = 0;
    for (; !s.empty(); s.remove_prefix(1)) {
      char c = s[0];
      if (c == 'a') who |= kStandard;
      else if (c == 'u') who |= kSetuid | kUser;
      else if (c == 'g') who |= kSetgid | kGroup;
      else if (c == 'o') who |= kOther;
      else break;
    }
    if (s.empty()) return syntax;
    bool equal_done = false;
    for (;;) {  // one or more operations for this `who`: "u+r-w"
      char op = s[0];
      s.remove_prefix(1);
      if (op != '+' && op != '-' && op != '=') return syntax;
      if (op == '=') equal_done = false;
      who &= ~kSticky;
      uint32_t perm = 0, perm_x = 0;
      for (;; s.remove_prefix(1)) {
        char b = s.empty() ? '\0' : s[0];
        bool names_ug = who == 0 || (who & ~kOther) != 0;
        if (b == 'r') {
          perm |= 0444;
        } else if (b == 'w') {
          perm |= 0222;
        } else if (b == 'x') {
          perm |= 0111;
        } else if (b == 'X') {
          if (op != '-') perm_x = 0111;
          else perm |= 0111;
        } else if (b == 's') {
          if (names_ug) perm |= kSetuid | kSetgid;
        } else if (b == 't') {
          if (names_ug) {
            who |= kSticky;
            perm |= kSticky;
          }
        } else if (b == 'u' || b == 'g' || b == 'o') {
          if (perm) {
            m.add(op, who, perm);
            perm = 0;
          }
          if (op == '=') equal_done = true;
          if (perm_x) {
            m.add('X', who, perm_x);
            perm_x = 0;
          }
          m.add(b, who, static_cast<uint32_t>(op));
        } else {
          if (perm || (op == '=' && !equal_done)) {
            if (op == '=') equal_done = true;
            m.add(op, who, perm);
          }
          if (perm_x) m.add('X', who, perm_x);
          break;
        }
      }
      if (s.empty() || s[0] == ',') break;
    }
    if (s.empty()) break;
    s.remove_prefix(1);  // ','
  }
  return m;
}

uint32_t ModeSpec::apply(uint32_t mode, bool is_dir) const {
  if (octal_) return *octal_;
  const uint32_t before = mode & 07777;
  uint32_t m = before;
  for (const Cmd& c : cmds_) {
    switch (c.op) {
      case '+': m |= c.bits; break;
      case '-': m &= ~c.bits; break;
      case 'X':
        if ((before & 0111) || is_dir) m |= c.bits;
        break;
      default: {
        uint32_t value = c.op == 'u' ? (m & kUser) >> 6 : c.op == 'g' ? (m & kGroup) >> 3 : m & kOther;
        if (c.how & kClear) {
          uint32_t clear = (c.how & kSet) ? 07 : value;
          if (c.targets & 1) m &= ~((clear << 6) & c.bits);
          if (c.targets & 2) m &= ~((clear << 3) & c.bits);
          if (c.targets & 4) m &= ~(clear & c.bits);
        }
        if (c.how & kSet) {
          if (c.targets & 1) m |= (value << 6) & c.bits;
          if (c.targets & 2) m |= (value << 3) & c.bits;
          if (c.targets & 4) m |= value & c.bits;
        }
      }
    }
  }
  return m & 07777;
}

}  // namespace ocib::copy
