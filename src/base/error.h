#pragma once
// Error values and Result<T>: the one error currency across ocib's module APIs.
// Shaped like std::expected (which g++ 12 lacks); no exceptions cross module boundaries.

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ocib {

enum class Errc {
  kGeneric,
  kInvalidArgument,  // bad user input (Dockerfile, flags)
  kNotFound,
  kIo,               // a system call failed; errno set
  kUnsupported,
  kFailedStep,       // a build step (RUN) exited non-zero
  kCancelled,
  kCorrupt,          // digest mismatch, bad store entry
  kSecurity,         // a path tried to escape its root
};

/// Where in a user-supplied file an error points (1-based; 0 = unknown).
struct SourceLoc {
  std::string file;
  int line = 0;
  int col = 0;
};

class Error {
 public:
  Error() = default;
  Error(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  /// An error from a failed system call: message "what: strerror(errno)".
  static Error from_errno(const std::string& what, int err);
  static Error invalid(std::string message) { return {Errc::kInvalidArgument, std::move(message)}; }
  static Error at(SourceLoc loc, std::string message) {
    Error e(Errc::kInvalidArgument, std::move(message));
    e.loc_ = std::move(loc);
    return e;
  }

  Errc code() const { return code_; }
  int sys_errno() const { return errno_; }
  const std::string& message() const { return message_; }
  const std::optional<SourceLoc>& loc() const { return loc_; }
  /// Exit code of a failed step (Errc::kFailedStep), else 0.
  int exit_code() const { return exit_code_; }
  Error& with_exit_code(int c) {
    exit_code_ = c;
    return *this;
  }
  Error& with_loc(SourceLoc loc) {
    loc_ = std::move(loc);
    return *this;
  }

  /// Adds an outer context ("while building stage 2"); printed outermost first.
  Error& wrap(std::string context) {
    context_.push_back(std::move(context));
    return *this;
  }

  /// "Dockerfile:12: ctx: ctx: message"
  std::string str() const;
  /// str() without the location: "ctx: ctx: message".
  std::string body() const;

 private:
  Errc code_ = Errc::kGeneric;
  int errno_ = 0;
  int exit_code_ = 0;
  std::string message_;
  std::vector<std::string> context_;  // innermost first
  std::optional<SourceLoc> loc_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT implicit
  Result(Error err) : v_(std::in_place_index<1>, std::move(err)) {}  // NOLINT implicit

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  Error& error() & {
    assert(!ok());
    return std::get<1>(v_);
  }
  const Error& error() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  Error&& error() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error err) : err_(std::move(err)) {}  // NOLINT implicit
  bool ok() const { return !err_.has_value(); }
  explicit operator bool() const { return ok(); }
  Error& error() & { return *err_; }
  const Error& error() const& { return *err_; }
  Error&& error() && { return std::move(*err_); }

 private:
  std::optional<Error> err_;
};

using Status = Result<void>;

inline Status ok_status() { return {}; }

}  // namespace ocib

#define OCIB_CONCAT_INNER_(a, b) a##b
#define OCIB_CONCAT_(a, b) OCIB_CONCAT_INNER_(a, b)

/// Returns the error of a Status/Result expression from the enclosing function.
#define OCIB_TRY(expr)                               \
  do {                                               \
    auto ocib_try_r_ = (expr);                       \
    if (!ocib_try_r_.ok()) return std::move(ocib_try_r_).error(); \
  } while (0)

/// `OCIB_ASSIGN_OR_RETURN(auto x, f());` declares/assigns x from a Result or returns its error.
#define OCIB_ASSIGN_OR_RETURN(lhs, expr) \
  OCIB_ASSIGN_OR_RETURN_IMPL_(OCIB_CONCAT_(ocib_r_, __LINE__), lhs, expr)
#define OCIB_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).error();     \
  lhs = std::move(tmp).value()
