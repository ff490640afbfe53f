#include "common/names.h"

#include <gtest/gtest.h>

#include <set>

#include "absl/strings/match.h"

namespace eofaas::common {
namespace {

TEST(NamesTest, AcceptsRfc1123Labels) {
  for (const char* name : {"a", "ndvi", "ndvi-2024", "0abc", "a1-b2-c3"}) {
    EXPECT_TRUE(ValidateFunctionName(name, "function.name").ok()) << name;
  }
}

TEST(NamesTest, RejectsOthersNamingTheField) {
  for (const char* name : {"", "Upper", "-lead", "trail-", "under_score", "dot.ted", "sp ace"}) {
    absl::Status status = ValidateFunctionName(name, "function.name");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_TRUE(absl::StrContains(status.message(), "function.name")) << status;
  }
}

TEST(NamesTest, RejectsNamesOverFortyCharacters) {
  EXPECT_TRUE(ValidateFunctionName(std::string(40, 'a'), "f").ok());
  absl::Status status = ValidateFunctionName(std::string(41, 'a'), "f");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "40")) << status;
}

bool IsRfc1035Label(const std::string& name) {
  return IsRfc1123Label(name) && std::isalpha(static_cast<unsigned char>(name.front()));
}

TEST(NamesTest, DeploymentNameIsNameDashFiveCharsFromTheKubernetesAlphabet) {
  std::string name = DeploymentName("ndvi", "uid-1", 1);
  ASSERT_EQ(name.size(), 10u);
  EXPECT_EQ(name.substr(0, 5), "ndvi-");
  for (char c : name.substr(5)) {
    EXPECT_NE(std::string("bcdfghjklmnpqrstvwxz2456789").find(c), std::string::npos) << name;
  }
  EXPECT_TRUE(IsRfc1035Label(name));
}

TEST(NamesTest, DeploymentNameIsStableAndDiffersPerUidAndGeneration) {
  EXPECT_EQ(DeploymentName("ndvi", "uid-1", 1), DeploymentName("ndvi", "uid-1", 1));
  std::set<std::string> names;
  for (int generation = 1; generation <= 200; ++generation) {
    names.insert(DeploymentName("ndvi", "uid-1", generation));
  }
  names.insert(DeploymentName("ndvi", "uid-2", 1));
  EXPECT_EQ(names.size(), 201u);
}

TEST(NamesTest, DeploymentNameStartsWithALetterAndFitsIn63) {
  std::string digit = DeploymentName("1band", "u", 1);
  EXPECT_TRUE(IsRfc1035Label(digit)) << digit;
  EXPECT_EQ(digit.substr(0, 9), "fn-1band-");
  std::string longest = DeploymentName(std::string(63, 'a'), "u", 7);
  EXPECT_LE(longest.size(), 63u);
  EXPECT_TRUE(IsRfc1035Label(longest)) << longest;
  EXPECT_NE(longest, DeploymentName(std::string(63, 'a'), "u", 8));
}

}  // namespace
}  // namespace eofaas::common
