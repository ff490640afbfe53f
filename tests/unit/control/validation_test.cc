#include "control/validation.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace eofaas::control {
namespace {

class ValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto catalog = TemplateCatalog::Load(EOFAAS_SOURCE_DIR "/templates");
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    catalog_ = std::move(*catalog);
    function_.set_name("ndvi");
    function_.set_template_("python3");
    (*function_.mutable_files())["handler.py"] = "def handle(data, ctx):\n  return 1\n";
  }

  // Expects INVALID_ARGUMENT with a message naming `field`.
  void ExpectInvalid(const std::string& field) {
    absl::Status status = ValidateFunction(function_, *catalog_, limits_);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_TRUE(absl::StrContains(status.message(), field)) << status;
  }

  std::unique_ptr<TemplateCatalog> catalog_;
  Limits limits_;
  eofaas::v1::Function function_;
};

TEST_F(ValidationTest, AcceptsAWellFormedFunction) {
  (*function_.mutable_files())["lib/util.py"] = "X = 1\n";
  (*function_.mutable_env())["BAND"] = "B04";
  (*function_.mutable_env())["_private1"] = "";
  function_.mutable_scaling()->set_min_replicas(2);
  function_.mutable_scaling()->set_max_replicas(4);
  EXPECT_TRUE(ValidateFunction(function_, *catalog_, limits_).ok());
}

TEST_F(ValidationTest, Name) {
  function_.set_name("Not_A_Label");
  ExpectInvalid("function.name");
  function_.set_name(std::string(41, 'a'));
  ExpectInvalid("function.name");
  function_.set_name("");
  ExpectInvalid("function.name");
}

TEST_F(ValidationTest, Template) {
  function_.set_template_("cobol");
  ExpectInvalid("function.template");
  function_.set_template_("");
  ExpectInvalid("function.template");
}

TEST_F(ValidationTest, FilesAreRequiredAndMustHoldTheHandler) {
  function_.clear_files();
  ExpectInvalid("function.files");
  (*function_.mutable_files())["other.py"] = "";
  ExpectInvalid("function.files");
}

TEST_F(ValidationTest, FilePathsStayInsideTheBundle) {
  for (const char* path : {"/etc/passwd", "../up.py", "a/../../b.py", "a//b.py", "./a.py", ""}) {
    auto function = function_;
    (*function_.mutable_files())[path] = "x";
    ExpectInvalid("function.files[");
    function_ = function;
  }
}

TEST_F(ValidationTest, SourcesOverTheLimit) {
  limits_.max_source_bytes = 1024;
  (*function_.mutable_files())["big.bin"] = std::string(1024, 'x');
  ExpectInvalid("function.files");
}

TEST_F(ValidationTest, AFileCannotAlsoBeADirectory) {
  (*function_.mutable_files())["lib"] = "x";
  (*function_.mutable_files())["lib/util.py"] = "y";
  ExpectInvalid("function.files[lib]");
}

TEST_F(ValidationTest, EnvValuesCountTowardsTheSizeLimit) {
  limits_.max_source_bytes = 4096;
  (*function_.mutable_env())["BIG"] = std::string(4096, 'v');
  ExpectInvalid("function.files");
}

TEST_F(ValidationTest, EnvNames) {
  for (const char* name : {"1ABC", "WITH-DASH", "", "EOFAAS_PORT", "SPACE NAME"}) {
    auto function = function_;
    (*function_.mutable_env())[name] = "v";
    ExpectInvalid("function.env[");
    function_ = function;
  }
}

TEST_F(ValidationTest, Scaling) {
  function_.mutable_scaling()->set_min_replicas(3);
  function_.mutable_scaling()->set_max_replicas(2);
  ExpectInvalid("function.scaling.min_replicas");
  function_.mutable_scaling()->set_min_replicas(1);
  function_.mutable_scaling()->set_max_replicas(limits_.max_replicas + 1);
  ExpectInvalid("function.scaling.max_replicas");
  function_.mutable_scaling()->set_max_replicas(0);
  function_.mutable_scaling()->set_min_replicas(limits_.max_replicas + 1);
  ExpectInvalid("function.scaling.min_replicas");
  function_.mutable_scaling()->set_min_replicas(-1);
  ExpectInvalid("function.scaling.min_replicas");
  function_.mutable_scaling()->set_min_replicas(1);
  function_.mutable_scaling()->set_target_concurrency(-5);
  ExpectInvalid("function.scaling.target_concurrency");
}

TEST(ValidateReplicasTest, NamesTheFieldWithThePrefixGiven) {
  Limits limits;
  absl::Status status = ValidateReplicas(5, 1, limits, "");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(), "min_replicas:")) << status;
  EXPECT_TRUE(ValidateReplicas(0, 0, limits, "").ok());
  EXPECT_TRUE(ValidateReplicas(0, 3, limits, "").ok());
}

}  // namespace
}  // namespace eofaas::control
