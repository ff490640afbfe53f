#include "control/build/local_builder.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/subprocess.h"
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

  // Renders `files` as a function of template `name` and builds it.
  absl::Status BuildFunction(const std::string& name, std::map<std::string, std::string> files) {
    const Template* tmpl = catalog_->Find(name);
    if (tmpl == nullptr) return absl::NotFoundError(name);
    function_.set_template_(name);
    function_.mutable_files()->clear();
    for (auto& [path, content] : files) (*function_.mutable_files())[path] = std::move(content);
    auto bundle = builder_.Render(function_, *tmpl, Collect());
    if (!bundle.ok()) return bundle.status();
    bundle_ = *bundle;
    return builder_.Build(function_, *bundle, *tmpl, Collect(), cancel_);
  }

  std::string Log() const { return absl::StrJoin(log_, "\n"); }

  // Runs a command the test needs (packing a fixture, importing what a build installed).
  static std::string Run(std::vector<std::string> argv, const std::string& cwd) {
    common::SpawnOptions options;
    options.argv = std::move(argv);
    options.cwd = cwd;
    options.env = {"PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"};
    auto result = common::Run(options, absl::Seconds(30));
    EXPECT_TRUE(result.ok() && result->ok()) << (result.ok() ? result->output : "");
    return result.ok() ? result->output : "";
  }

  tests::TempDir dir_;
  LocalBuilder builder_{dir_ / "bundles", absl::Seconds(30)};
  std::unique_ptr<TemplateCatalog> catalog_;
  const Template* python_ = nullptr;
  eofaas::v1::Function function_;
  std::vector<std::string> log_;
  std::atomic<bool> cancel_{false};
  Bundle bundle_;
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
  ASSERT_TRUE(builder_.Build(function_, *first, *python_, Collect(), cancel_).ok())
      << absl::StrJoin(log_, "\n");
  log_.clear();
  auto second = builder_.Render(function_, *python_, Collect());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->artifact, second->artifact);
  ASSERT_TRUE(builder_.Build(function_, *second, *python_, Collect(), cancel_).ok());
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
  absl::Status status = builder_.Build(function_, *bundle, *python_, Collect(), cancel_);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(status.message(), "SyntaxError")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "handler.py")) << status;
  EXPECT_TRUE(absl::StrContains(absl::StrJoin(log_, "\n"), "SyntaxError"));
  // A failed check is not remembered as built.
  EXPECT_FALSE(builder_.Build(function_, *bundle, *python_, Collect(), cancel_).ok());
}

// More source files than one command line holds (their paths make 2.4 MB, past the kernel's
// 2 MiB for arguments): the check runs over all of them, a batch at a time.
TEST_F(LocalBuilderTest, ManySourceFilesAreCheckedInBatches) {
  std::map<std::string, std::string> files = {{"handler.py", "def handle(data, ctx):\n  pass\n"}};
  const std::string dir(100, 'd');
  for (int i = 0; i < 10000; ++i) {
    files[absl::StrCat(dir, "/", std::string(120, 'p'), i, ".py")] = "";
  }
  files[absl::StrCat(dir, "/zzz.py")] = "def broken(:\n";  // sorted last: in the last batch
  absl::Status status = BuildFunction("python3", std::move(files));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "zzz.py")) << status;
  EXPECT_FALSE(absl::StrContains(Log(), "Argument list too long"));
}

TEST_F(LocalBuilderTest, CancelledBuildStops) {
  Template slow = *python_;
  slow.check_command = {"/bin/sh", "-c", "sleep 30", "sh"};
  auto bundle = builder_.Render(function_, slow, Collect());
  ASSERT_TRUE(bundle.ok());
  cancel_ = true;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(builder_.Build(function_, *bundle, slow, Collect(), cancel_).code(),
            absl::StatusCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(LocalBuilderTest, ANewBuilderKillsWhatBuildsOfItsDirectoryLeftRunning) {
  // The check leaves a process in a session of its own, beyond the kill of the check's group.
  Template leaving = *python_;
  const std::string left = dir_ / "left";
  leaving.check_command = {"/bin/sh", "-c", absl::StrCat("setsid sleep 300 & echo $! > ", left),
                           "sh"};
  auto bundle = builder_.Render(function_, leaving, Collect());
  ASSERT_TRUE(bundle.ok());
  ASSERT_TRUE(builder_.Build(function_, *bundle, leaving, Collect(), cancel_).ok()) << Log();
  pid_t pid = 0;
  std::ifstream(left) >> pid;
  ASSERT_GT(pid, 0);
  auto running = [pid] {
    auto stat = common::ReadProcStat(pid);
    return stat && !stat->zombie();
  };
  absl::Cleanup kill_left = [&] {
    if (running()) kill(pid, SIGKILL);
  };
  ASSERT_TRUE(running());

  LocalBuilder other(dir_ / "other-bundles", absl::Seconds(30));
  EXPECT_TRUE(running()) << "a builder of another directory killed it";
  LocalBuilder again(dir_ / "bundles", absl::Seconds(30));
  EXPECT_FALSE(running()) << "the next builder of its directory left it running";
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

// Dependency manifests. Each template's install script is run for real; the "installed" cases use
// a local package (a wheel, a package directory) so that they pass offline, and a package no index
// has for the failures, so that they fail the same with or without a network.

constexpr const char* kNoSuchPackage = "eofaas-no-such-package-zz9";

TEST_F(LocalBuilderTest, RequirementsTheMachineMeetsAreNotInstalled) {
  // Debian's python3-numpy (see DESIGN.md) is what the replicas import.
  ASSERT_TRUE(BuildFunction("python3", {{"handler.py",
                                         "import numpy\ndef handle(data, ctx):\n"
                                         "    return b''\n"},
                                        {"requirements.txt", "# arrays\nnumpy>=1.20  # Debian\n"}})
                  .ok())
      << Log();
  EXPECT_TRUE(absl::StrContains(Log(), "requirements.txt: every requirement is installed"))
      << Log();
  EXPECT_FALSE(fs::exists(fs::path(bundle_.dir) / "function/.deps"));
  EXPECT_FALSE(fs::exists(fs::path(bundle_.dir) / ".eofaas-scratch"));
}

TEST_F(LocalBuilderTest, MissingRequirementsAreInstalledIntoTheBundle) {
  if (Run({"/usr/bin/python3", "-c", "import importlib.util as u; print(bool(u.find_spec('pip')))"},
          "/") != "True\n") {
    GTEST_SKIP() << "pip is not installed for /usr/bin/python3 (Debian: python3-pip)";
  }
  // A wheel in a local directory: the requirements file points pip at it, as a user's may.
  fs::path source = dir_.path() / "wheel";
  dir_.Write("wheel/eofaas_local_dep.py", "VALUE = 7\n");
  dir_.Write("wheel/eofaas_local_dep-1.0.dist-info/METADATA",
             "Metadata-Version: 2.1\nName: eofaas-local-dep\nVersion: 1.0\n");
  dir_.Write("wheel/eofaas_local_dep-1.0.dist-info/WHEEL",
             "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n");
  dir_.Write("wheel/eofaas_local_dep-1.0.dist-info/RECORD", "");
  fs::create_directories(dir_.path() / "wheels");
  Run({"/usr/bin/python3", "-m", "zipfile", "-c",
       dir_ / "wheels/eofaas_local_dep-1.0-py3-none-any.whl", "eofaas_local_dep.py",
       "eofaas_local_dep-1.0.dist-info"},
      source.string());
  std::string requirements = absl::StrCat("--no-index\n--find-links ", dir_ / "wheels",
                                          "\nnumpy\neofaas-local-dep==1.0\n");
  ASSERT_TRUE(BuildFunction("python3", {{"handler.py", "def handle(data, ctx):\n    return b''\n"},
                                        {"requirements.txt", requirements}})
                  .ok())
      << Log();
  EXPECT_TRUE(absl::StrContains(Log(), "installed eofaas-local-dep==1.0")) << Log();
  EXPECT_EQ(Run({"/usr/bin/python3", "-c",
                 "import sys; sys.path.insert(0, 'function/.deps'); import eofaas_local_dep; "
                 "print(eofaas_local_dep.VALUE)"},
                bundle_.dir),
            "7\n");
  // numpy came from the machine, not from the (offline) index.
  EXPECT_FALSE(fs::exists(fs::path(bundle_.dir) / "function/.deps/numpy"));
  EXPECT_FALSE(fs::exists(fs::path(bundle_.dir) / ".eofaas-scratch"));

  // The same inputs again: the bundle, dependencies included, is reused as it is.
  log_.clear();
  fs::remove_all(dir_.path() / "wheels");
  ASSERT_TRUE(BuildFunction("python3", {{"handler.py", "def handle(data, ctx):\n    return b''\n"},
                                        {"requirements.txt", requirements}})
                  .ok())
      << Log();
  EXPECT_TRUE(absl::StrContains(Log(), "nothing to build")) << Log();
}

TEST_F(LocalBuilderTest, UninstallableRequirementFailsNamingTheFileAndThePackage) {
  auto start = std::chrono::steady_clock::now();
  absl::Status status = BuildFunction(
      "python3-sci", {{"handler.py", "def handle(data, ctx):\n    return b''\n"},
                      {"requirements.txt", absl::StrCat("numpy\n", kNoSuchPackage, ">=1.0\n")}});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << Log();
  EXPECT_TRUE(absl::StrContains(status.message(), "requirements.txt")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), kNoSuchPackage)) << status;
  EXPECT_FALSE(absl::StrContains(status.message(), "numpy")) << status;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(25));
  EXPECT_FALSE(fs::exists(fs::path(bundle_.dir) / "function/.deps"));
  // A failed install is not remembered as built.
  log_.clear();
  EXPECT_FALSE(
      builder_.Build(function_, bundle_, *catalog_->Find("python3-sci"), Collect(), cancel_).ok());
}

TEST_F(LocalBuilderTest, PackagesShippedWithTheFunctionAreNotInstalled) {
  // A vendored module is not the user's code: node --check does not walk node_modules.
  ASSERT_TRUE(
      BuildFunction("node20",
                    {{"handler.js", "module.exports = async () => require('tiny').value;\n"},
                     {"package.json", R"({"dependencies": {"tiny": "^1.2.0"}})"},
                     {"node_modules/tiny/package.json", R"({"name": "tiny", "version": "1.4.2"})"},
                     {"node_modules/tiny/index.js", "exports.value = 1;\nthis is not checked\n"}})
          .ok())
      << Log();
  EXPECT_TRUE(absl::StrContains(Log(), "package.json: every dependency is in")) << Log();
}

TEST_F(LocalBuilderTest, PackagesAreInstalledIntoTheBundle) {
  // A package shipped among the function's files and named by a relative file: dependency: npm
  // installs it, as a copy, without a registry.
  std::map<std::string, std::string> files = {
      {"handler.js", "module.exports = async () => require('eofaas-local-dep');\n"},
      {"package.json", R"({"dependencies": {"eofaas-local-dep": "file:lib/dep"}})"},
      {"lib/dep/package.json", R"({"name": "eofaas-local-dep", "version": "1.0.0"})"},
      {"lib/dep/index.js", "module.exports = 7;\n"}};
  ASSERT_TRUE(BuildFunction("node20", files).ok()) << Log();
  EXPECT_TRUE(absl::StrContains(Log(), "package.json: installed eofaas-local-dep")) << Log();
  fs::path installed = fs::path(bundle_.dir) / "function/node_modules/eofaas-local-dep";
  EXPECT_FALSE(fs::is_symlink(installed));
  EXPECT_EQ(Run({"/usr/bin/node", "-p", "require('./function/node_modules/eofaas-local-dep')"},
                bundle_.dir),
            "7\n");
  EXPECT_FALSE(fs::exists(fs::path(bundle_.dir) / "function/package-lock.json"));
  EXPECT_FALSE(fs::exists(fs::path(bundle_.dir) / ".eofaas-scratch"));

  // The same inputs again: the bundle, dependencies included, is reused as it is.
  log_.clear();
  ASSERT_TRUE(BuildFunction("node20", files).ok()) << Log();
  EXPECT_TRUE(absl::StrContains(Log(), "nothing to build")) << Log();
}

TEST_F(LocalBuilderTest, PackagesAreInstalledFromTheRegistry) {
  // Needs registry.npmjs.org, as scripts/setup.sh does.
  ASSERT_TRUE(BuildFunction("node20", {{"handler.js",
                                        "module.exports = async () => require('is-number')(1);\n"},
                                       {"package.json", R"({"dependencies": {"is-number": "7.0.0"},
                                                  "devDependencies": {"no-such-dev-dep": "1.0.0"}})"}})
                  .ok())
      << Log();
  EXPECT_EQ(Run({"/usr/bin/node", "-p",
                 "require('./function/node_modules/is-number/package.json').version"},
                bundle_.dir),
            "7.0.0\n");
}

TEST_F(LocalBuilderTest, UninstallablePackageFailsNamingTheFileAndThePackage) {
  absl::Status status = BuildFunction(
      "node20", {{"handler.js", "module.exports = async () => 1;\n"},
                 {"package.json",
                  absl::StrCat(R"({"dependencies": {")", kNoSuchPackage, R"(": "1.0.0"}})")}});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << Log();
  EXPECT_TRUE(absl::StrContains(status.message(), "package.json")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), kNoSuchPackage)) << status;
  EXPECT_FALSE(fs::exists(fs::path(bundle_.dir) / "function/node_modules"));
}

TEST_F(LocalBuilderTest, ComposerRequirementsTheMachineMeetsBuild) {
  // php and its extensions are checked against the interpreter; a package shipped in vendor/
  // counts as installed.
  ASSERT_TRUE(
      BuildFunction("php8",
                    {{"handler.php",
                      "<?php\nfunction handle(Data $data, Context $ctx)\n{\n    return 1;\n}\n"},
                     {"composer.json",
                      R"({"require": {"php": ">=8.0 <10", "ext-json": "*", "acme/tiny": "^1.2"}})"},
                     {"vendor/composer/installed.json",
                      R"({"packages": [{"name": "acme/tiny", "version": "v1.3.0"}]})"}})
          .ok())
      << Log();
  EXPECT_TRUE(absl::StrContains(Log(), "composer.json: every requirement is met")) << Log();
}

TEST_F(LocalBuilderTest, UnmetComposerRequirementFailsNamingTheFileAndThePackage) {
  absl::Status status = BuildFunction(
      "php8", {{"handler.php", "<?php\nfunction handle(Data $data, Context $ctx)\n{\n}\n"},
               {"composer.json", R"({"require": {"php": ">=8.0", "ext-json": "*",
                                                 "eofaas/no-such-package": "^1.0",
                                                 "ext-no-such-extension": "*"}})"}});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << Log();
  EXPECT_TRUE(absl::StrContains(status.message(), "composer.json")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "eofaas/no-such-package ^1.0")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "ext-no-such-extension")) << status;
  EXPECT_FALSE(absl::StrContains(status.message(), "ext-json")) << status;
}

TEST_F(LocalBuilderTest, BuildsOfOneBundleRunOneAtATime) {
  // Two functions with identical inputs share a bundle: its dependencies are installed once.
  Template counting = *python_;
  counting.dependencies.command = {"/bin/sh", "-c", "echo run >> ../runs; sleep 0.3", "sh"};
  (*function_.mutable_files())["requirements.txt"] = "numpy\n";
  auto bundle = builder_.Render(function_, counting, Collect());
  ASSERT_TRUE(bundle.ok());
  absl::Status first, second;
  std::thread other(
      [&] { first = builder_.Build(function_, *bundle, counting, Collect(), cancel_); });
  second = builder_.Build(
      function_, *bundle, counting, [](std::vector<std::string>) {}, cancel_);
  other.join();
  EXPECT_TRUE(first.ok()) << first;
  EXPECT_TRUE(second.ok()) << second;
  std::ifstream runs(dir_.path() / "bundles" / "runs");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(runs), {}), "run\n");
}

TEST_F(LocalBuilderTest, DependencyInstallsSeeTheControlPlanesProxy) {
  Template echoing = *python_;
  echoing.dependencies.command = {"/bin/sh", "-c", "echo \"proxy=$https_proxy\"", "sh"};
  (*function_.mutable_files())["requirements.txt"] = "numpy\n";
  auto bundle = builder_.Render(function_, echoing, Collect());
  ASSERT_TRUE(bundle.ok());
  setenv("https_proxy", "http://proxy.example:3128", 1);
  absl::Status status = builder_.Build(function_, *bundle, echoing, Collect(), cancel_);
  unsetenv("https_proxy");
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(absl::StrContains(Log(), "proxy=http://proxy.example:3128")) << Log();
}

}  // namespace
}  // namespace eofaas::control
