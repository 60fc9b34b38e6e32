#pragma once
// "type=T,k=v,..." specs as buildx writes them for -o, --cache-to and --cache-from.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace ocib {

/// One `type=...,k=v` spec: its type and the other attributes.
struct TypedSpec {
  std::string type;
  std::map<std::string, std::string> attrs;
  /// The attribute or "" when absent.
  std::string get(const std::string& k) const {
    auto it = attrs.find(k);
    return it == attrs.end() ? std::string() : it->second;
  }
};

/// "a,b,,c" -> {"a", "b", "c"}: the comma lists of -o, --mount, name=, --no-cache-filter and
/// --allow (empty parts dropped).
std::vector<std::string> split_commas(const std::string& s);

/// Splits a buildx CSV spec: commas separate fields except inside double quotes, which are
/// removed (`"name=a,b"` and `name="a,b"` are one field; `""` inside quotes is a quote).
Result<std::vector<std::string>> split_csv(const std::string& s);

/// Parses "type=oci,dest=x.tar" (split_csv): every part must be key=value; type= is required.
/// `what` names the spec in errors ("output", "cache").
Result<TypedSpec> parse_typed_spec(const std::string& spec, const std::string& what = "output");

/// `s` with ASCII letters lowercased (stage names, platform parts, flag values).
std::string ascii_lower(std::string s);
std::string ascii_upper(std::string s);

/// The parts joined with `sep`.
std::string join(const std::vector<std::string>& parts, const std::string& sep);

/// "; did you mean \"X\"?" for the candidate closest to `word` (edit distance at most 2, and
/// less than half its length), else "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);
/// The candidate did_you_mean() suggests, if any.
std::optional<std::string> best_match(const std::string& word, const std::vector<std::string>& candidates);
/// The same in BuildKit's words, for Dockerfile errors: " (did you mean type?)", or "".
std::string did_you_mean_bk(const std::string& word, const std::vector<std::string>& candidates);

/// A decimal uint32 ("0".."4294967295", no sign, no spaces), else nullopt.
std::optional<uint32_t> parse_u32(const std::string& s);

}  // namespace ocib
