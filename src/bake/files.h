#pragma once
// Reading bake files: HCL (a subset, below), JSON (buildx reads it as HCL's JSON syntax, so
// its strings are templates too) and Compose (services' build sections).
//
// The HCL subset: attributes `name = EXPR` and blocks `target "NAME" {}`, `group "NAME" {}`,
// `variable "NAME" { default = EXPR }` (other block types are errors); comments `#`, `//`,
// `/* */`. Expressions: strings with `${EXPR}` interpolation (`$${` is a literal `${`, the
// escapes \n \r \t \" \\ \uNNNN), heredocs `<<EOT` / `<<-EOT`, numbers, true, false, null,
// lists `[a, b]`, objects `{ k = v }` (also `"k" = v`, `k: v`), variable references, `!`,
// `==`, `!=`, `&&`, `||`, `c ? a : b`, parentheses, and the functions lower, upper, join,
// equal, notequal, and, or, not. No `for` expressions, attribute traversals (`a.b`),
// arithmetic or user functions: those are errors naming file:line:col.
// Targets may have a `matrix` (an object of lists) and then a `name` template: one target
// per combination, and the matrix target's own name becomes a group of them.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bake/definition.h"
#include "base/error.h"

namespace ocib::bake {

/// Looks up an environment variable (tests pass their own).
using Env = std::function<std::optional<std::string>(const std::string&)>;
Env process_env();

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;
struct Expr {
  enum class Op { kLiteral, kTemplate, kVar, kList, kObject, kCall, kNot, kBinary, kCond };
  Op op = Op::kLiteral;
  nlohmann::json literal;            // kLiteral
  std::string name;                  // kVar, kCall; kBinary: the operator
  std::vector<ExprPtr> items;        // kTemplate parts, kList items, kCall args, operands
  std::vector<std::pair<std::string, ExprPtr>> fields;  // kObject
  SourceLoc loc;
};

struct Block;
struct Attribute {
  std::string name;
  ExprPtr value;
  SourceLoc loc;
};
struct Body {
  std::vector<Attribute> attrs;
  std::vector<Block> blocks;
};
struct Block {
  std::string type;
  std::vector<std::string> labels;
  Body body;
  SourceLoc loc;
};

/// A parsed HCL or JSON bake file.
struct Document {
  std::string path;
  Body body;
};

/// Parses HCL text; errors name path:line:col.
Result<Document> parse_hcl(const std::string& text, const std::string& path);
/// Parses a JSON bake file into the same shape (strings are templates); errors name
/// path:line:col for syntax, the target and attribute otherwise.
Result<Document> parse_json(const std::string& text, const std::string& path);

/// Evaluates documents together (a variable of one is seen by all; a later file's variable
/// default wins; the environment wins over defaults): one Config per document, in order.
/// `builtins` are variables every file sees unless it defines one of the same name (buildx's
/// BAKE_LOCAL_PLATFORM).
Result<std::vector<Config>> evaluate(const std::vector<Document>& docs, const Env& env,
                                     const std::map<std::string, nlohmann::json>& builtins = {});

/// A compose file's services with a `build` section (string or map: context, dockerfile,
/// dockerfile_inline, args, labels, tags, target, cache_from, cache_to, platforms, network,
/// no_cache, pull, shm_size, additional_contexts, secrets, ssh; `image` is the first tag),
/// and a "default" group of them all. `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$VAR`
/// and `$$` are interpolated from `env` as compose does.
Result<Config> read_compose(const std::string& text, const std::string& path, const Env& env);

/// Reads one file by its name: *.hcl as HCL, *.json as JSON, *.yml/*.yaml as compose, else
/// by its contents (JSON if it parses as an object, else compose if it has `services:`,
/// else HCL).
enum class Format { kHcl, kJson, kCompose };
Format format_of(const std::string& path, const std::string& text);

}  // namespace ocib::bake
