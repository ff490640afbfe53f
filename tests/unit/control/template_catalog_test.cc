#include "control/build/template_catalog.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "tests/support/temp_dir.h"

namespace eofaas::control {
namespace {

constexpr const char* kMinimal = R"yaml(name: t1
language: python
description: "A test template"
handler:
  file: handler.py
  signature: "def handle(data, ctx)"
run: ["/usr/bin/python3", "runtime/server.py"]
check:
  command: ["/usr/bin/python3", "-m", "py_compile"]
  extensions: [".py"]
concurrency: 4
)yaml";

TEST(TemplateCatalogTest, LoadsTheRepositoryTemplates) {
  auto catalog = TemplateCatalog::Load(EOFAAS_SOURCE_DIR "/templates");
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  const Template* python = (*catalog)->Find("python3");
  ASSERT_NE(python, nullptr);
  EXPECT_EQ(python->handler_file, "handler.py");
  EXPECT_EQ(python->handler_signature, "def handle(data, ctx)");
  EXPECT_EQ(python->run.front(), "/usr/bin/python3");
  EXPECT_GE(python->concurrency, 1);
  EXPECT_EQ(python->ToProto().handler_file(), "handler.py");
}

TEST(TemplateCatalogTest, ParsesEveryKey) {
  tests::TempDir dir;
  dir.Write("t1/template.yaml", kMinimal);
  auto catalog = TemplateCatalog::Load(dir.path().string());
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  const Template* t = (*catalog)->Find("t1");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->check_command, (std::vector<std::string>{"/usr/bin/python3", "-m", "py_compile"}));
  EXPECT_EQ(t->check_extensions, (std::vector<std::string>{".py"}));
  EXPECT_EQ(t->concurrency, 4);
  EXPECT_EQ(t->dir, (dir.path() / "t1").string());
  EXPECT_EQ((*catalog)->Find("nope"), nullptr);
}

TEST(TemplateCatalogTest, RejectsUnknownKeysNamingFileAndKey) {
  tests::TempDir dir;
  dir.Write("t1/template.yaml", std::string(kMinimal) + "colour: blue\n");
  auto catalog = TemplateCatalog::Load(dir.path().string());
  EXPECT_EQ(catalog.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(catalog.status().message(), "template.yaml")) << catalog.status();
  EXPECT_TRUE(absl::StrContains(catalog.status().message(), "colour")) << catalog.status();
}

TEST(TemplateCatalogTest, RejectsMissingKeysAndMismatchedNames) {
  tests::TempDir dir;
  dir.Write("t1/template.yaml", "name: t1\nlanguage: python\n");
  EXPECT_TRUE(absl::StrContains(TemplateCatalog::Load(dir.path().string()).status().message(),
                                "description"));
  tests::TempDir other;
  other.Write("t2/template.yaml", kMinimal);  // says name: t1
  EXPECT_EQ(TemplateCatalog::Load(other.path().string()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TemplateCatalogTest, EveryRepositoryTemplateInstallsItsLanguagesManifest) {
  auto catalog = TemplateCatalog::Load(EOFAAS_SOURCE_DIR "/templates");
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  std::map<std::string, std::string> manifests;
  for (const Template* t : (*catalog)->All()) {
    manifests[t->name] = t->dependencies.manifest;
    EXPECT_FALSE(t->dependencies.command.empty()) << t->name;
  }
  EXPECT_EQ(manifests, (std::map<std::string, std::string>{{"node20", "package.json"},
                                                           {"php8", "composer.json"},
                                                           {"python3", "requirements.txt"},
                                                           {"python3-sci", "requirements.txt"}}));
  EXPECT_EQ((*catalog)->Find("python3")->dependencies.directory, ".deps");
}

TEST(TemplateCatalogTest, ParsesDependencies) {
  tests::TempDir dir;
  dir.Write("t1/template.yaml", std::string(kMinimal) + R"yaml(dependencies:
  manifest: requirements.txt
  directory: ./lib/deps/
  command: ["/usr/bin/python3", "build/install.py"]
)yaml");
  auto catalog = TemplateCatalog::Load(dir.path().string());
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  const Template::Dependencies& dependencies = (*catalog)->Find("t1")->dependencies;
  EXPECT_EQ(dependencies.manifest, "requirements.txt");
  EXPECT_EQ(dependencies.directory, "lib/deps");  // normal form
  EXPECT_EQ(dependencies.command,
            (std::vector<std::string>{"/usr/bin/python3", "build/install.py"}));

  dir.Write("t1/template.yaml", kMinimal);
  catalog = TemplateCatalog::Load(dir.path().string());
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  EXPECT_TRUE((*catalog)->Find("t1")->dependencies.command.empty());
}

TEST(TemplateCatalogTest, RejectsBadDependencies) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"  manifest: a.txt\n  directory: d\n  command: [x]\n  colour: blue\n", "colour"},
      {"  manifest: a.txt\n  command: [x]\n", "directory"},
      {"  manifest: sub/a.txt\n  directory: d\n  command: [x]\n", "manifest"},
      {"  manifest: a.txt\n  directory: ../d\n  command: [x]\n", "directory"},
      {"  manifest: a.txt\n  directory: /d\n  command: [x]\n", "directory"},
      {"  manifest: a.txt\n  directory: d/..\n  command: [x]\n", "directory"},
      {"  manifest: a.txt\n  directory: d\n  command: []\n", "command"},
  };
  for (const auto& [yaml, named] : cases) {
    tests::TempDir dir;
    dir.Write("t1/template.yaml", std::string(kMinimal) + "dependencies:\n" + yaml);
    auto catalog = TemplateCatalog::Load(dir.path().string());
    EXPECT_EQ(catalog.status().code(), absl::StatusCode::kInvalidArgument) << yaml;
    EXPECT_TRUE(absl::StrContains(catalog.status().message(), named)) << catalog.status();
  }
}

TEST(TemplateCatalogTest, EmptyDirectoryIsNotFound) {
  tests::TempDir dir;
  EXPECT_EQ(TemplateCatalog::Load(dir.path().string()).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace eofaas::control
