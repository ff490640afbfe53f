// Options: flag and YAML parsing over one table of typed targets.
#include "common/options.h"

#include <yaml-cpp/yaml.h>

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace eofaas::common {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

absl::Status WithPrefix(absl::string_view prefix, const absl::Status& status) {
  return absl::InvalidArgumentError(absl::StrCat(prefix, status.message()));
}

std::string MarkText(const std::string& path, const YAML::Mark& mark) {
  if (mark.is_null()) return absl::StrCat(path, ": ");
  return absl::StrCat(path, ":", mark.line + 1, ": ");
}

}  // namespace

Options::Options(std::string program_summary) : program_summary_(std::move(program_summary)) {}

void Options::AddString(std::string name, std::string help, std::string* target) {
  Add(std::move(name), std::move(help), target);
}

void Options::AddInt(std::string name, std::string help, int64_t* target) {
  Add(std::move(name), std::move(help), target);
}

void Options::AddBool(std::string name, std::string help, bool* target) {
  Add(std::move(name), std::move(help), target);
}

void Options::AddDuration(std::string name, std::string help, absl::Duration* target) {
  Add(std::move(name), std::move(help), target);
}

void Options::AddStringList(std::string name, std::string help, std::vector<std::string>* target) {
  Add(std::move(name), std::move(help), target);
}

void Options::Add(std::string name, std::string help, Target target) {
  if (name == "config" || name == "help" || Find(name) != nullptr) {
    registration_error_ = absl::StrCat("option --", name, " is defined twice");
    return;
  }
  std::string default_text =
      std::visit(Overloaded{
                     [](std::string* v) { return absl::StrCat("\"", *v, "\""); },
                     [](int64_t* v) { return absl::StrCat(*v); },
                     [](bool* v) { return std::string(*v ? "true" : "false"); },
                     [](absl::Duration* v) { return absl::FormatDuration(*v); },
                     [](std::vector<std::string>* v) {
                       return absl::StrCat("[", absl::StrJoin(*v, ", "), "]");
                     },
                 },
                 target);
  options_.push_back(Option{.name = std::move(name),
                            .help = std::move(help),
                            .target = target,
                            .default_text = std::move(default_text)});
}

Options::Option* Options::Find(absl::string_view name) {
  for (Option& option : options_) {
    if (option.name == name) return &option;
  }
  return nullptr;
}

absl::Status Options::SetFromText(Option& option, absl::string_view text) {
  return std::visit(
      Overloaded{
          [&](std::string* v) {
            *v = std::string(text);
            return absl::OkStatus();
          },
          [&](int64_t* v) {
            if (!absl::SimpleAtoi(text, v)) {
              return absl::InvalidArgumentError(absl::StrCat("invalid integer \"", text, "\""));
            }
            return absl::OkStatus();
          },
          [&](bool* v) {
            if (!absl::SimpleAtob(text, v)) {
              return absl::InvalidArgumentError(
                  absl::StrCat("invalid boolean \"", text, "\" (want true or false)"));
            }
            return absl::OkStatus();
          },
          [&](absl::Duration* v) {
            if (!absl::ParseDuration(text, v)) {
              return absl::InvalidArgumentError(
                  absl::StrCat("invalid duration \"", text, "\" (e.g. 500ms, 10s, 1m30s)"));
            }
            return absl::OkStatus();
          },
          [&](std::vector<std::string>* v) {
            v->emplace_back(text);
            return absl::OkStatus();
          },
      },
      option.target);
}

absl::Status Options::Parse(int argc, char** argv) {
  if (!registration_error_.empty()) return absl::InvalidArgumentError(registration_error_);
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help_requested_ = true;
      return absl::OkStatus();
    }
  }

  // First pass: split the arguments into (option, value) pairs and find --config.
  struct Flag {
    Option* option;
    absl::string_view value;
  };
  std::vector<Flag> flags;
  std::optional<std::string> config_path;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg.size() <= 2 || !absl::StartsWith(arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    absl::string_view name = arg.substr(2);
    std::optional<absl::string_view> value;
    if (size_t eq = name.find('='); eq != absl::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    Option* option = nullptr;
    if (name != "config") {
      option = Find(name);
      if (option == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
      }
    }
    if (!value.has_value()) {
      if (option != nullptr && std::holds_alternative<bool*>(option->target)) {
        value = "true";
      } else if (i + 1 < argc && !absl::StartsWith(argv[i + 1], "--")) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
    }
    if (option != nullptr) {
      flags.push_back(Flag{option, *value});
    } else if (config_path.has_value()) {
      return absl::InvalidArgumentError("--config given more than once");
    } else {
      config_path = std::string(*value);
    }
  }

  if (config_path.has_value()) {
    if (absl::Status status = LoadConfig(*config_path); !status.ok()) return status;
  }
  for (Flag& flag : flags) {
    if (auto* list = std::get_if<std::vector<std::string>*>(&flag.option->target)) {
      if (!flag.option->set_on_command_line) (*list)->clear();
    }
    flag.option->set_on_command_line = true;
    if (absl::Status status = SetFromText(*flag.option, flag.value); !status.ok()) {
      return WithPrefix(absl::StrCat("--", flag.option->name, ": "), status);
    }
  }
  return absl::OkStatus();
}

absl::Status Options::LoadConfig(const std::string& path) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (root.IsNull()) return absl::OkStatus();  // an empty file sets nothing
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(
          MarkText(path, root.Mark()), "expected a mapping of option names to values"));
    }
    for (const auto& entry : root) {
      const YAML::Node& key = entry.first;
      const YAML::Node& value = entry.second;
      Option* option = key.IsScalar() ? Find(key.Scalar()) : nullptr;
      if (option == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(MarkText(path, key.Mark()), "unknown key \"",
                                                       key.IsScalar() ? key.Scalar() : "?", "\""));
      }
      std::string prefix = absl::StrCat(MarkText(path, value.Mark()), option->name, ": ");
      if (auto* list = std::get_if<std::vector<std::string>*>(&option->target)) {
        (*list)->clear();
        if (value.IsNull()) continue;  // `name:` with nothing: an empty list
        if (!value.IsSequence()) {
          return absl::InvalidArgumentError(absl::StrCat(prefix, "expected a list of strings"));
        }
        for (const YAML::Node& item : value) {
          if (!item.IsScalar()) {
            return absl::InvalidArgumentError(
                absl::StrCat(MarkText(path, item.Mark()), option->name, ": expected a string"));
          }
          (*list)->push_back(item.Scalar());
        }
        continue;
      }
      if (!value.IsScalar()) {
        return absl::InvalidArgumentError(absl::StrCat(prefix, "expected a single value"));
      }
      if (absl::Status status = SetFromText(*option, value.Scalar()); !status.ok()) {
        return WithPrefix(prefix, status);
      }
    }
  } catch (const YAML::BadFile&) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read config file ", path));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(MarkText(path, e.mark), e.msg));
  }
  return absl::OkStatus();
}

std::string Options::Usage() const {
  std::string out = absl::StrCat(
      program_summary_,
      "\n\nOptions (each can also be a key of the --config YAML file; flags override the "
      "file):\n"
      "  --config=FILE\n"
      "      YAML file of options, keyed by option name.\n"
      "  --help\n"
      "      Print this text and exit.\n");
  for (const Option& option : options_) {
    absl::string_view placeholder =
        std::visit(Overloaded{
                       [](std::string*) { return "=STRING"; },
                       [](int64_t*) { return "=INT"; },
                       [](bool*) { return "[=BOOL]"; },
                       [](absl::Duration*) { return "=DURATION"; },
                       [](std::vector<std::string>*) { return "=STRING (repeatable)"; },
                   },
                   option.target);
    absl::StrAppend(&out, "  --", option.name, placeholder, "  (default: ", option.default_text,
                    ")\n      ", option.help, "\n");
  }
  return out;
}

std::optional<int> PortOf(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return std::nullopt;
  const absl::string_view host = address.substr(0, colon);
  const absl::string_view port = address.substr(colon + 1);
  const bool host_ok =
      !host.empty() && (host.front() == '[' ? host.size() > 2 && host.back() == ']'
                                            : host.find_first_of("[]:") == absl::string_view::npos);
  int number = 0;
  // SimpleAtoi alone would take a sign and spaces.
  if (!host_ok || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(port, &number) || number > 65535) {
    return std::nullopt;
  }
  return number;
}

absl::Status CheckListenAddress(absl::string_view option, absl::string_view address) {
  if (!PortOf(address)) {
    return absl::InvalidArgumentError(
        absl::StrCat(option, ": \"", address, "\" is not host:port with a port from 0 to 65535"));
  }
  return absl::OkStatus();
}

}  // namespace eofaas::common
