// Canonical JSON form of the AST and error rendering helpers.

#include <algorithm>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/log.h"
#include "dockerfile/dockerfile.h"

namespace ocib::dockerfile {

std::string utf8(std::string_view s);

namespace {

// nlohmann::json::dump() throws on invalid UTF-8, and Dockerfiles may hold any bytes: invalid
// sequences become U+FFFD (as Go's encoding/json does when BuildKit prints an AST).
std::string utf8_impl(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    }
    if (ok && n > 1) {
      // Reject overlong forms, surrogates and code points above U+10FFFF.
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if (n == 2) ok = c >= 0xC2;
      if (n == 3) ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
      if (n == 4) ok = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90) && c <= 0xF4;
    }
    if (!ok) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    out.append(s.substr(i, n));
    i += n;
  }
  return out;
}

nlohmann::json str(std::string_view s) { return utf8_impl(s); }

nlohmann::json strs(const std::vector<std::string>& v) {
  nlohmann::json out = nlohmann::json::array();
  for (const std::string& s : v) out.push_back(str(s));
  return out;
}

nlohmann::json kvs_json(const std::vector<std::pair<std::string, std::optional<std::string>>>& kvs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [k, v] : kvs) {
    out.push_back(nlohmann::json::array({str(k), v ? str(*v) : nlohmann::json(nullptr)}));
  }
  return out;
}

nlohmann::json instruction_json(const Instruction& in) {
  nlohmann::json j;
  j["keyword"] = in.keyword;
  j["line"] = in.line;
  j["end_line"] = in.end_line;
  j["rest"] = str(in.rest);
  if (!in.flags.empty()) {
    nlohmann::json f = nlohmann::json::array();
    for (const Flag& fl : in.flags) f.push_back(nlohmann::json::array({str(fl.name), str(fl.value)}));
    j["flags"] = f;
  }
  if (in.json) j["json"] = strs(*in.json);
  if (!in.kvs.empty()) j["kvs"] = kvs_json(in.kvs);
  if (in.raw_kvs != in.kvs && !in.raw_kvs.empty()) j["raw_kvs"] = kvs_json(in.raw_kvs);
  if (!in.words.empty()) j["words"] = strs(in.words);
  if (in.raw_words != in.words && !in.raw_words.empty()) j["raw_words"] = strs(in.raw_words);
  if (!in.heredocs.empty()) {
    nlohmann::json h = nlohmann::json::array();
    for (const Heredoc& d : in.heredocs) {
      h.push_back({{"name", str(d.name)}, {"content", str(d.content)}, {"expand", d.expand},
                   {"chomp", d.chomp}});
    }
    j["heredocs"] = h;
  }
  return j;
}

}  // namespace

std::string utf8(std::string_view s) { return utf8_impl(s); }

nlohmann::json to_json(const Dockerfile& df) {
  nlohmann::json j;
  j["escape"] = std::string(1, df.escape);
  if (!df.syntax.empty()) j["syntax"] = str(df.syntax);
  if (!df.check.empty()) j["check"] = str(df.check);
  if (!df.meta_args.empty()) {
    nlohmann::json m = nlohmann::json::array();
    for (const Instruction& in : df.meta_args) m.push_back(instruction_json(in));
    j["meta_args"] = m;
  }
  nlohmann::json stages = nlohmann::json::array();
  for (const Stage& st : df.stages) {
    nlohmann::json s;
    s["index"] = st.index;
    s["name"] = str(st.name);
    s["base"] = str(st.base);
    if (!st.platform.empty()) s["platform"] = str(st.platform);
    s["from"] = instruction_json(st.from);
    nlohmann::json body = nlohmann::json::array();
    for (const Instruction& in : st.body) body.push_back(instruction_json(in));
    s["body"] = body;
    stages.push_back(s);
  }
  j["stages"] = stages;
  return j;
}

std::string render_error_context(std::string_view text, const Error& e) {
  if (!e.loc() || e.loc()->line <= 0) return "";
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  int line_no = 1;
  while (line_no < e.loc()->line) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return "";
    text.remove_prefix(nl + 1);
    ++line_no;
  }
  std::string_view line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t col = e.loc()->col > 0 ? static_cast<size_t>(e.loc()->col - 1) : 0;
  if (e.loc()->col <= 0) {
    while (col < line.size() && (line[col] == ' ' || line[col] == '\t')) ++col;
  }
  // The line is untrusted: a long one is shown as a window around the column, and control
  // characters as escapes (log::escape_control), so neither a huge error nor terminal escape
  // sequences reach the user's terminal.
  auto continuation = [&](size_t k) { return k < line.size() && (static_cast<unsigned char>(line[k]) & 0xc0) == 0x80; };
  size_t begin = 0, end = line.size();
  if (line.size() > kErrorLineWindow) {
    begin = col > kErrorLineWindow / 2 ? std::min(col - kErrorLineWindow / 2, line.size() - kErrorLineWindow) : 0;
    end = begin + kErrorLineWindow;
    while (continuation(begin)) --begin;
    while (continuation(end)) ++end;
  }
  std::string shown = begin > 0 ? "..." : "";
  std::string caret = begin > 0 ? "   " : "";
  // One caret column per displayed character before the column (tabs kept so it lines up).
  for (char c : log::escape_control(line.substr(begin, std::min(col, end) - begin)))
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) caret += c == '\t' ? '\t' : ' ';
  shown += log::escape_control(line.substr(begin, end - begin));
  if (end < line.size()) shown += "...";
  if (begin > 0 || end < line.size()) shown += " (line of " + std::to_string(line.size()) + " bytes)";
  return shown + "\n" + caret + "^\n";
}

}  // namespace ocib::dockerfile
