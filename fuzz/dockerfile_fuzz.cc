// libFuzzer target: the Dockerfile parser, the word expander and the .dockerignore matcher must
// not crash, leak or hit UB on any input. See fuzz/README.md.

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "dockerfile/dockerfile.h"
#include "dockerfile/dockerignore.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const std::map<std::string, std::string> kVars = {
      {"A", "alpha"}, {"EMPTY", ""}, {"P", "/usr/local/bin"}, {"F", "a.tar.gz"}};

  auto df = ocib::dockerfile::parse(text);
  if (df.ok()) {
    (void)ocib::dockerfile::to_json(*df).dump();
    auto visit = [&](const ocib::dockerfile::Instruction& in) {
      for (const auto& w : in.raw_words) (void)ocib::dockerfile::process_word(w, kVars, df->escape);
      for (const auto& [k, v] : in.raw_kvs) {
        if (v) (void)ocib::dockerfile::process_word(*v, kVars, df->escape);
      }
      for (const auto& h : in.heredocs) (void)h.data();
    };
    for (const auto& in : df->meta_args) visit(in);
    for (const auto& st : df->stages) {
      visit(st.from);
      for (const auto& in : st.body) visit(in);
    }
  } else {
    (void)ocib::dockerfile::render_error_context(text, df.error());
  }
  for (char esc : {'\\', '`'}) {
    (void)ocib::dockerfile::expand(text, kVars, esc);
    (void)ocib::dockerfile::process_word(text, kVars, esc);
    (void)ocib::dockerfile::unquote(text, esc);
  }
  (void)ocib::dockerfile::parse_heredoc_word(text);
  // .dockerignore: the first line is the path to test, the rest the ignore file.
  size_t nl = text.find('\n');
  if (nl != std::string_view::npos) {
    auto m = ocib::dockerfile::parse_dockerignore(text.substr(nl + 1));
    if (m.ok()) {
      (void)m->excluded(text.substr(0, nl));
      (void)m->may_contain_included(text.substr(0, nl));
    }
  }
  return 0;
}
