#include "control/build/local_builder.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "tests/support/temp_dir.h"

namespace eofaas::control {
namespace {

namespace fs = std::filesystem;

class LocalBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto catalog = TemplateCatalog::Load(EOFAAS_SOURCE_DIR "/templates");
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    catalog_ = std::move(*catalog);
    python_ = catalog_->Find("python3");
    function_.set_name("ndvi");
    function_.set_template_("python3");
    (*function_.mutable_files())["handler.py"] =
        "import helper\n\ndef handle(data, ctx):\n    return helper.VALUE\n";
    (*function_.mutable_files())["helper.py"] = "VALUE = 42\n";
  }

  BuildLogSink Collect() {
    return [this](std::vector<std::string> lines) {
      log_.insert(log_.end(), lines.begin(), lines.end());
    };
  }

  tests::TempDir dir_;
  LocalBuilder builder_{dir_ / "bundles", absl::Seconds(30)};
  std::unique_ptr<TemplateCatalog> catalog_;
  const Template* python_ = nullptr;
  eofaas::v1::Function function_;
  std::vector<std::string> log_;
  std::atomic<bool> cancel_{false};
};

TEST_F(LocalBuilderTest, RendersTemplateAndUserFilesIntoAContentAddressedBundle) {
  auto bundle = builder_.Render(function_, *python_, Collect());
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_TRUE(absl::StartsWith(bundle->artifact, "sha256:"));
  EXPECT_EQ(bundle->artifact.size(), 7u + 64u);
  EXPECT_EQ(bundle->dir, builder_.BundleDir(bundle->artifact));
  EXPECT_TRUE(fs::exists(fs::path(bundle->dir) / "function/handler.py"));
  EXPECT_TRUE(fs::exists(fs::path(bundle->dir) / "function/helper.py"));
  EXPECT_TRUE(fs::exists(fs::path(bundle->dir) / "template.yaml"));
  EXPECT_TRUE(fs::exists(fs::path(bundle->dir) / python_->run.back()));
}

TEST_F(LocalBuilderTest, SameInputsSameArtifactNoRebuild) {
  auto first = builder_.Render(function_, *python_, Collect());
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(builder_.Build(*first, *python_, Collect(), cancel_).ok())
      << absl::StrJoin(log_, "\n");
  log_.clear();
  auto second = builder_.Render(function_, *python_, Collect());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->artifact, second->artifact);
  ASSERT_TRUE(builder_.Build(*second, *python_, Collect(), cancel_).ok());
  EXPECT_TRUE(absl::StrContains(absl::StrJoin(log_, "\n"), "reused")) << absl::StrJoin(log_, "\n");
  EXPECT_TRUE(absl::StrContains(absl::StrJoin(log_, "\n"), "nothing to build"));

  (*function_.mutable_files())["helper.py"] = "VALUE = 43\n";
  auto changed = builder_.Render(function_, *python_, Collect());
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed->artifact, first->artifact);
}

TEST_F(LocalBuilderTest, SyntaxErrorFailsWithTheCompilersLines) {
  (*function_.mutable_files())["handler.py"] = "def handle(data ctx):\n    return 1\n";
  auto bundle = builder_.Render(function_, *python_, Collect());
  ASSERT_TRUE(bundle.ok());
  absl::Status status = builder_.Build(*bundle, *python_, Collect(), cancel_);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(status.message(), "SyntaxError")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "handler.py")) << status;
  EXPECT_TRUE(absl::StrContains(absl::StrJoin(log_, "\n"), "SyntaxError"));
  // A failed check is not remembered as built.
  EXPECT_FALSE(builder_.Build(*bundle, *python_, Collect(), cancel_).ok());
}

TEST_F(LocalBuilderTest, CancelledBuildStops) {
  Template slow = *python_;
  slow.check_command = {"/bin/sh", "-c", "sleep 30", "sh"};
  auto bundle = builder_.Render(function_, slow, Collect());
  ASSERT_TRUE(bundle.ok());
  cancel_ = true;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(builder_.Build(*bundle, slow, Collect(), cancel_).code(), absl::StatusCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(LocalBuilderTest, LinkedTemplateFilesAreCopiedAtTheirOwnPath) {
  // A template that shares a runtime file with another through a symbolic link.
  fs::path shared = dir_.path() / "templates" / "shared";
  fs::path linked = dir_.path() / "templates" / "linked";
  fs::create_directories(shared);
  fs::create_directories(linked / "runtime");
  dir_.Write("templates/shared/common.py", "SHARED = True\n");
  fs::create_symlink("../../shared/common.py", linked / "runtime" / "common.py");
  Template tmpl = *python_;
  tmpl.name = "linked";
  tmpl.dir = linked.string();
  auto bundle = builder_.Render(function_, tmpl, Collect());
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  fs::path copied = fs::path(bundle->dir) / "runtime" / "common.py";
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(copied)));
  std::ifstream in(copied);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "SHARED = True\n");
  EXPECT_FALSE(fs::exists(dir_.path() / "bundles" / "shared"));
}

TEST_F(LocalBuilderTest, UnreadableTemplateDirFailsTheRenderInsteadOfThrowing) {
  Template missing = *python_;
  missing.dir = (dir_.path() / "no-such-template").string();
  EXPECT_EQ(builder_.Render(function_, missing, Collect()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(LocalBuilderTest, GarbageCollectionKeepsOnlyLiveArtifacts) {
  auto keep = builder_.Render(function_, *python_, Collect());
  (*function_.mutable_files())["helper.py"] = "VALUE = 0\n";
  auto drop = builder_.Render(function_, *python_, Collect());
  ASSERT_TRUE(keep.ok() && drop.ok());
  builder_.CollectGarbage({keep->artifact});
  EXPECT_TRUE(fs::exists(keep->dir));
  EXPECT_FALSE(fs::exists(drop->dir));
}

}  // namespace
}  // namespace eofaas::control
