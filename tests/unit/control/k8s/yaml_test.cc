#include "control/k8s/yaml.h"

#include <gtest/gtest.h>

#include <string>

#include "control/k8s/render.h"

namespace eofaas::control::k8s {
namespace {

TEST(KubernetesYamlTest, QuotesStringsThatWouldReadBackAsAnotherType) {
  for (const char* value :
       {"", "8080", "-1", "+2", "0x1f", "0o17", "1e3", ".5", "1:30", "1.2.3", "yes", "No", "ON",
        "off", "y", "TRUE", "false", "null", "~", ".inf", "-.Inf", ".NaN", "2024-01-01",
        // would stay a string, but whatever starts like a number is quoted
        "100m"}) {
    EXPECT_TRUE(NeedsQuotes(value)) << value;
  }
  for (const char* value :
       {"ndvi", "--frontend", "-", "sha256:ab", "a.b", ".dockerconfig", "yes-please", "nullable"}) {
    EXPECT_FALSE(NeedsQuotes(value)) << value;
  }
}

TEST(KubernetesYamlTest, StringsReadBackAsStringsAndNumbersAsNumbers) {
  YAML::Node object;
  object["port"] = 8080;
  object["enabled"] = true;
  object["name"] = String("8080");
  object["flag"] = String("yes");
  object["empty"] = String("");
  object["ref"] = String("$(HOME)");
  object["args"] = Strings({"--frontend", "1"});
  const std::string text = ToYaml({object});
  EXPECT_EQ(text,
            "---\n"
            "port: 8080\n"
            "enabled: true\n"
            "name: \"8080\"\n"
            "flag: \"yes\"\n"
            "empty: \"\"\n"
            "ref: $(HOME)\n"
            "args:\n"
            "  - --frontend\n"
            "  - \"1\"\n");
  YAML::Node loaded = YAML::Load(text);
  EXPECT_EQ(loaded["name"].Tag(), "!");
  EXPECT_EQ(loaded["flag"].Tag(), "!");
  EXPECT_EQ(loaded["port"].Tag(), "?");
  EXPECT_EQ(loaded["ref"].as<std::string>(), "$(HOME)");
}

TEST(KubernetesYamlTest, EmptyCollectionsAreWrittenInFlowStyle) {
  YAML::Node object;
  object["emptyDir"] = YAML::Node(YAML::NodeType::Map);
  object["items"] = YAML::Node(YAML::NodeType::Sequence);
  EXPECT_EQ(ToYaml({object}), "---\nemptyDir: {}\nitems: []\n");
}

TEST(KubernetesYamlTest, KeepsInsertionOrderAndSeparatesDocuments) {
  YAML::Node first;
  first["kind"] = String("B");
  first["apiVersion"] = String("v1");
  YAML::Node second;
  second["kind"] = String("A");
  EXPECT_EQ(ToYaml({first, second}), "---\nkind: B\napiVersion: v1\n---\nkind: A\n");
  EXPECT_EQ(ToYaml({}), "");
}

TEST(KubernetesYamlTest, ReloadedDocumentsEmitTheSameBytes) {
  YAML::Node object;
  object["metadata"]["annotations"]["eofaas.io/generation"] = String("3");
  object["spec"]["replicas"] = 2;
  const std::string text = ToYaml({object});
  EXPECT_EQ(ToYaml({YAML::Load(text)}), text);
}

}  // namespace
}  // namespace eofaas::control::k8s
