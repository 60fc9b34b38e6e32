#pragma once
// .dockerignore: parsing and matching with moby/patternmatcher semantics (as used by BuildKit /
// fsutil when sending the build context), plus the rule that picks the ignore file.

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace ocib::dockerfile {

class Matcher {
 public:
  struct Pattern {
    std::string text;        // cleaned pattern, without '!'
    bool exclusion = false;  // written as "!pattern": re-includes what it matches
  };

  /// Whether `rel_path` (slash-separated, relative to the context root; cleaned like
  /// filepath.Clean: "./a//b/" == "a/b") is left out of the context. moby's
  /// MatchesOrParentMatches: patterns are applied in order and each one that matches the path
  /// or any of its parent directories sets the result (exclusion patterns to "included"), so
  /// the last matching pattern wins. The context root itself ("" or ".") is never excluded.
  /// `is_dir` does not change the result (patterns cannot select only directories: "dir/" is
  /// cleaned to "dir"); it is accepted so callers can pass what they know.
  bool excluded(std::string_view rel_path, bool is_dir = false) const;

  /// For a walker: false means nothing under the directory `dir` (relative, slash-separated)
  /// can be included, so when excluded(dir, true) is true the whole directory may be skipped.
  /// True when some "!" pattern could match a path inside `dir` (compared component by
  /// component; a "**" makes it always possible). Conservative: may say true needlessly,
  /// never false wrongly.
  bool may_contain_included(std::string_view dir) const;

  const std::vector<Pattern>& patterns() const { return patterns_; }
  bool has_exclusions() const;

 private:
  friend Result<Matcher> parse_dockerignore(std::string_view text);
  std::vector<Pattern> patterns_;
};

/// Parses .dockerignore text as moby's ignorefile.ReadAll + patternmatcher.New do: one pattern
/// per line; a UTF-8 BOM is dropped; lines whose first char is '#' are comments; surrounding
/// whitespace is trimmed; blank lines are skipped; a leading '!' marks an exception (blanks
/// after it are trimmed too); patterns are cleaned (filepath.Clean: "./a" -> "a", "a/../b" ->
/// "b", "a/" -> "a") and a leading '/' is removed. Errors: "illegal exclusion pattern: \"!\""
/// and "syntax error in pattern: <p>" (unclosed '[', bad range, trailing '\').
/// Pattern syntax (per filepath.Match, on the whole slash-separated path): '*' any run of
/// non-'/' chars, '?' one non-'/' char, "[a-z]"/"[^a]" classes, '\' escapes the next char,
/// "**" any number of directories (including none): "**/x", "a/**/b", "a/**".
Result<Matcher> parse_dockerignore(std::string_view text);

/// The Dockerfile's name in `context` when -f is not given: "Dockerfile", or "dockerfile" when
/// only that exists (as BuildKit).
std::string default_dockerfile(const std::string& context);

/// The ignore file to use for a build (BuildKit/buildx rule): "<dockerfile>.dockerignore"
/// beside the Dockerfile (e.g. build/Dockerfile.dev.dockerignore for -f build/Dockerfile.dev,
/// or CONTEXT/Dockerfile.dockerignore for the default Dockerfile) takes precedence over
/// CONTEXT/.dockerignore. `dockerfile_path` is the Dockerfile path as opened (absolute or
/// relative to the cwd), "" for the default CONTEXT/Dockerfile, "-" for stdin (only
/// CONTEXT/.dockerignore applies). Returns the path of the first regular file that exists,
/// "" when there is none.
std::string dockerignore_path(const std::string& context, const std::string& dockerfile_path);

}  // namespace ocib::dockerfile
