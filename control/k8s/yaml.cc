#include "control/k8s/yaml.h"

#include <algorithm>
#include <array>

#include "absl/strings/ascii.h"
#include "control/k8s/render.h"

namespace eofaas::control::k8s {
namespace {

void Emit(YAML::Emitter& out, const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      if (node.size() == 0) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        return;
      }
      out << YAML::BeginMap;
      for (const auto& entry : node) {
        out << YAML::Key;
        Emit(out, entry.first);
        out << YAML::Value;
        Emit(out, entry.second);
      }
      out << YAML::EndMap;
      return;
    case YAML::NodeType::Sequence:
      if (node.size() == 0) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
        return;
      }
      out << YAML::BeginSeq;
      for (const auto& item : node) Emit(out, item);
      out << YAML::EndSeq;
      return;
    case YAML::NodeType::Scalar:
      if (node.Tag() == "!" && NeedsQuotes(node.Scalar())) out << YAML::DoubleQuoted;
      out << node.Scalar();
      return;
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out << YAML::Null;
      return;
  }
}

}  // namespace

YAML::Node String(absl::string_view value) {
  YAML::Node node{std::string(value)};
  node.SetTag("!");
  return node;
}

YAML::Node Strings(const std::vector<std::string>& values) {
  YAML::Node node(YAML::NodeType::Sequence);
  for (const auto& value : values) node.push_back(String(value));
  return node;
}

bool NeedsQuotes(absl::string_view value) {
  // YAML 1.1's booleans and nulls (a superset of 1.2's), in the spellings readers accept.
  constexpr std::array<absl::string_view, 10> kWords = {"y",     "yes", "n",   "no",   "true",
                                                        "false", "on",  "off", "null", "~"};
  if (value.empty()) return true;
  const std::string lower = absl::AsciiStrToLower(value);
  if (std::find(kWords.begin(), kWords.end(), lower) != kWords.end()) return true;
  // Numbers in every base and form (1, -1, 0x1f, 0o17, 1_000, 1.5e3, .5, 1:30, .inf, .NaN):
  // whatever starts like one is quoted, which costs nothing for a string that is not.
  absl::string_view rest = lower;
  if (rest.front() == '-' || rest.front() == '+') rest.remove_prefix(1);
  if (rest.empty()) return false;
  if (absl::ascii_isdigit(rest.front())) return true;
  if (rest.front() == '.' && rest.size() > 1 &&
      (absl::ascii_isdigit(rest[1]) || rest == ".inf" || rest == ".nan")) {
    return true;
  }
  return false;
}

std::string ToYaml(const std::vector<YAML::Node>& documents) {
  std::string text;
  for (const auto& document : documents) {
    YAML::Emitter out;
    out.SetIndent(2);
    Emit(out, document);
    text += "---\n";
    text += out.c_str();
    text += "\n";
  }
  return text;
}

}  // namespace eofaas::control::k8s
