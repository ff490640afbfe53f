// Command-line flags and the optional YAML config file, described once: each option is a flag
// `--name` and, with the same name, a top-level key of the file given by `--config`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace eofaas::common {

/// A table of options bound to caller-owned variables. A variable's value when it is added is its
/// default (shown in Usage()); Parse() overwrites the variables that the config file or the
/// command line set. Built and parsed on one thread, typically at the top of main; the targets
/// must outlive the Options object.
class Options {
 public:
  explicit Options(std::string program_summary);
  Options(const Options&) = delete;
  Options& operator=(const Options&) = delete;

  void AddString(std::string name, std::string help, std::string* target);
  /// Accepts a decimal integer; in YAML a number or a quoted number.
  void AddInt(std::string name, std::string help, int64_t* target);
  /// `--name` alone means true; `--name=true|false` (also 1/0, yes/no). The flag never takes the
  /// next argument as its value.
  void AddBool(std::string name, std::string help, bool* target);
  /// An absl duration: "500ms", "10s", "1h30m".
  void AddDuration(std::string name, std::string help, absl::Duration* target);
  /// A YAML sequence of strings, or a repeated flag. Flags on the command line replace the
  /// file's list (they do not append to it).
  void AddStringList(std::string name, std::string help, std::vector<std::string>* target);

  /// Parses `--name=value` and `--name value` arguments (argv[0] is the program). `--config=FILE`
  /// is applied first wherever it appears, then the flags in command-line order, so flags
  /// override the file; a repeated scalar flag keeps its last value.
  /// `--help` (or `-h`) anywhere: returns OK with help_requested() true and sets nothing.
  /// Errors, all INVALID_ARGUMENT: an unknown flag or YAML key, or a positional argument (the
  /// message names it); a value that does not parse (names the option, and the file and line
  /// for YAML); an unreadable or malformed config file (names the file, and the line).
  /// Variables already set when an error occurs keep their new values. Call once.
  absl::Status Parse(int argc, char** argv);

  /// True after Parse() met `--help`: print Usage() and exit 0.
  bool help_requested() const { return help_requested_; }

  /// The summary, then one entry per option (registration order) with its default and help.
  std::string Usage() const;

 private:
  using Target =
      std::variant<std::string*, int64_t*, bool*, absl::Duration*, std::vector<std::string>*>;
  struct Option {
    std::string name;
    std::string help;
    Target target;
    std::string default_text;
    bool set_on_command_line = false;  // for lists: the first flag clears the file's values
  };

  void Add(std::string name, std::string help, Target target);
  Option* Find(absl::string_view name);
  absl::Status LoadConfig(const std::string& path);
  /// Sets a scalar option, or appends to a list option, from `text`.
  static absl::Status SetFromText(Option& option, absl::string_view text);

  std::string program_summary_;
  std::vector<Option> options_;
  std::string registration_error_;  // a duplicate name, reported by Parse()
  bool help_requested_ = false;
};

/// The port of `address` when it is host:port (an IPv6 host in brackets) with a decimal port of
/// at most five digits, up to 65535; nullopt for anything else.
std::optional<int> PortOf(absl::string_view address);

/// INVALID_ARGUMENT naming `option` unless `address` is host:port (see PortOf); port 0 listens
/// on any free one.
absl::Status CheckListenAddress(absl::string_view option, absl::string_view address);

}  // namespace eofaas::common
