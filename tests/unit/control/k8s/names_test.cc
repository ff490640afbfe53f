#include "control/k8s/names.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/names.h"

namespace eofaas::control::k8s {
namespace {

bool IsRfc1035Label(const std::string& name) {
  return common::IsRfc1123Label(name) && std::isalpha(static_cast<unsigned char>(name.front()));
}

TEST(RoleNameTest, AppendsTheRoleAfterTheSuffix) {
  const std::string deployment = common::DeploymentName("ndvi", "uid", 1);
  EXPECT_EQ(RoleName(deployment, "build"), deployment + "-build");
}

TEST(RoleNameTest, CutsTheFunctionPartAndKeepsTheSuffixWhole) {
  // Longer than any name a user may choose, as a guard should that limit change.
  const std::string function(70, 'a');
  const std::string deployment = common::DeploymentName(function, "uid", 7);
  ASSERT_EQ(deployment.size(), 63u);
  const std::string suffix = deployment.substr(deployment.size() - 6);
  const std::string name = RoleName(deployment, "build");
  EXPECT_EQ(name.size(), 63u);
  EXPECT_TRUE(absl::EndsWith(name, suffix + "-build")) << name;
  EXPECT_TRUE(IsRfc1035Label(name)) << name;
}

TEST(RoleNameTest, DropsADashLeftAtTheCut) {
  // The cut falls right after "aaa-": the name must not get "--".
  const std::string function = std::string(50, 'a') + "-bbbbbbbbbbbb";
  const std::string name = RoleName(common::DeploymentName(function, "uid", 1), "build");
  EXPECT_FALSE(absl::StrContains(name, "--")) << name;
  EXPECT_TRUE(IsRfc1035Label(name)) << name;
  EXPECT_LE(name.size(), 63u);
}

TEST(RoleNameTest, StaysUniquePerGenerationWhenCut) {
  const std::string function(70, 'x');
  std::set<std::string> names;
  for (int generation = 1; generation <= 300; ++generation) {
    names.insert(RoleName(common::DeploymentName(function, "uid", generation), "build"));
  }
  EXPECT_EQ(names.size(), 300u);
}

TEST(RoleNameTest, NeverEqualsADeploymentName) {
  // A deployment name ends in five characters without a vowel; "build" has one. So the build of
  // one function cannot take the name of the deployment of a function called "<x>-build".
  for (int generation = 1; generation <= 100; ++generation) {
    const std::string build = RoleName(common::DeploymentName("ndvi", "u", generation), "build");
    for (int other = 1; other <= 100; ++other) {
      ASSERT_NE(build, common::DeploymentName(build.substr(0, build.size() - 6), "v", other));
    }
  }
}

TEST(LabelValueTest, ValidValuesStayAsTheyAre) {
  for (const char* value : {"", "ndvi", "python3-sci", "A.b_c-9", "x"}) {
    EXPECT_TRUE(IsLabelValue(value)) << value;
    EXPECT_EQ(SanitizeLabelValue(value), value);
  }
}

TEST(LabelValueTest, SanitisesCharactersEndsAndLength) {
  EXPECT_EQ(SanitizeLabelValue("Python 3.11 (sci)"), "Python-3.11--sci");
  EXPECT_EQ(SanitizeLabelValue("_lead-and-trail_."), "lead-and-trail");
  EXPECT_EQ(SanitizeLabelValue("a/b:c"), "a-b-c");
  EXPECT_EQ(SanitizeLabelValue("été"), "t");
  EXPECT_EQ(SanitizeLabelValue("--__.."), "");
  const std::string cut = SanitizeLabelValue(std::string(62, 'a') + "-bcd");
  EXPECT_EQ(cut, std::string(62, 'a'));
  for (const std::string& value :
       std::vector<std::string>{"Python 3.11 (sci)", std::string(100, 'z') + "!", "é", "-"}) {
    EXPECT_TRUE(IsLabelValue(SanitizeLabelValue(value))) << value;
  }
}

TEST(LabelValueTest, RejectsInvalidValues) {
  for (const std::string& value :
       std::vector<std::string>{"-a", "a-", "a b", "a/b", std::string(64, 'a')}) {
    EXPECT_FALSE(IsLabelValue(value)) << value;
  }
}

TEST(EscapeExpansionTest, DoublesEveryDollar) {
  EXPECT_EQ(EscapeExpansion("$(HOME)/x"), "$$(HOME)/x");
  EXPECT_EQ(EscapeExpansion("a$$b$"), "a$$$$b$$");
  EXPECT_EQ(EscapeExpansion("plain"), "plain");
}

}  // namespace
}  // namespace eofaas::control::k8s
