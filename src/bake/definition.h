#pragma once
// The bake definition as buildx models it: targets (attributes in buildx's Target order),
// groups and the merge, inherits and --set rules, independent of the file format
// (hcl.cc, json_file.cc and compose.cc read the three formats into a Config).

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace ocib::bake {

/// How an attribute is typed and how a later definition (another file, or an inheriting
/// target) combines with an earlier one.
enum class Kind { kString, kList, kMap, kBool };
struct Field {
  const char* name;  // as in the bake file and buildx's --print
  Kind kind;
  bool merge;  // lists: appended (buildx: "merge") instead of replaced
};
/// Every target attribute, in the order buildx prints them.
const std::vector<Field>& fields();
const Field* find_field(const std::string& name);

struct Target {
  std::string name;
  std::vector<std::string> inherits;
  /// Attribute name -> value: a string, an array of strings, an object of strings, or a bool.
  std::map<std::string, nlohmann::json> attrs;
  std::string dir;  // directory of the file that defined it: relative paths are resolved there
  SourceLoc loc;    // where it was defined (for errors)
};

struct Group {
  std::string name;
  std::vector<std::string> targets;
  SourceLoc loc;
};

struct Config {
  std::map<std::string, Target> targets;
  std::map<std::string, Group> groups;
};

/// `t2`'s attributes over `t`'s, by buildx's Target.Merge: strings and bools replaced, maps
/// merged key by key, lists replaced (tags, platforms, output, cache-to) or appended (the
/// others), inherits appended.
void merge_target(Target& t, const Target& t2);
/// A later file over an earlier one: same-named targets merged, groups' targets joined.
void merge_config(Config& into, const Config& from);

/// Checks and converts an attribute's value (evaluated from any format) to its kind:
/// strings from numbers and bools too, lists of strings, maps of strings (null entries
/// dropped), bools from "true"/"false". `where` names it in errors.
Result<nlohmann::json> coerce(const Field& f, const nlohmann::json& v, const SourceLoc& where);

/// One --set TARGET.KEY=VALUE (or +=).
struct Override {
  std::string pattern;  // target name or glob (*, ?, [..])
  std::string key;      // e.g. "tags", "args.FOO", "platform"
  std::string value;
  bool append = false;  // +=
};
Result<Override> parse_override(const std::string& spec);

/// What `bake` builds: the targets the names resolved to, with inherits and overrides
/// applied and buildx's defaults (context ".", dockerfile "Dockerfile") filled in, and the
/// groups to print.
struct Resolved {
  std::map<std::string, Target> targets;
  std::map<std::string, Group> groups;
  std::vector<std::string> order;  // target names in the order they were asked for
};

/// Resolves TARGET|GROUP names (empty: "default"). Unknown names, inherit cycles and
/// overrides that match no target are errors (kInvalidArgument) with "did you mean".
Result<Resolved> resolve(const Config& c, const std::vector<std::string>& names,
                         const std::vector<Override>& overrides);

/// `--print`: {"group": {...}, "target": {...}} as buildx prints it (indent 2, attributes in
/// Target order, names and map keys sorted, <>& escaped as Go's encoder does).
std::string print_json(const Resolved& r);

}  // namespace ocib::bake
