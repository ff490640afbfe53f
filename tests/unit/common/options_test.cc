// Options: flags, the YAML config file, their precedence, and the errors a user sees.
#include "common/options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace eofaas::common {
namespace {

using ::testing::HasSubstr;

// Owns argv strings for Options::Parse.
class Args {
 public:
  Args(std::initializer_list<std::string> args) : strings_(args) {
    strings_.insert(strings_.begin(), "eofaas-test");
    for (std::string& s : strings_) pointers_.push_back(s.data());
  }
  int argc() { return static_cast<int>(pointers_.size()); }
  char** argv() { return pointers_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

std::string WriteFile(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

class OptionsTest : public ::testing::Test {
 protected:
  OptionsTest() : options_("eofaas-test: a program under test.") {
    options_.AddString("listen", "Address to listen on.", &listen_);
    options_.AddInt("workers", "Worker threads.", &workers_);
    options_.AddBool("verbose", "Log more.", &verbose_);
    options_.AddDuration("timeout", "RPC timeout.", &timeout_);
    options_.AddStringList("root", "Allowed data roots.", &roots_);
  }

  absl::Status Parse(std::initializer_list<std::string> args) {
    Args a(args);
    return options_.Parse(a.argc(), a.argv());
  }

  std::string listen_ = "127.0.0.1:7070";
  int64_t workers_ = 4;
  bool verbose_ = false;
  absl::Duration timeout_ = absl::Seconds(10);
  std::vector<std::string> roots_ = {"/data"};
  Options options_;
};

TEST_F(OptionsTest, NoArgumentsKeepDefaults) {
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(listen_, "127.0.0.1:7070");
  EXPECT_EQ(workers_, 4);
  EXPECT_FALSE(verbose_);
  EXPECT_EQ(timeout_, absl::Seconds(10));
  EXPECT_EQ(roots_, std::vector<std::string>{"/data"});
  EXPECT_FALSE(options_.help_requested());
}

TEST_F(OptionsTest, ParsesBothFlagForms) {
  absl::Status status = Parse({"--listen=0.0.0.0:1", "--workers", "16", "--verbose",
                               "--timeout=500ms", "--root", "/a", "--root=/b"});
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(listen_, "0.0.0.0:1");
  EXPECT_EQ(workers_, 16);
  EXPECT_TRUE(verbose_);
  EXPECT_EQ(timeout_, absl::Milliseconds(500));
  EXPECT_EQ(roots_, (std::vector<std::string>{"/a", "/b"}));
}

TEST_F(OptionsTest, BoolTakesExplicitValueOnlyAfterEquals) {
  verbose_ = true;
  ASSERT_TRUE(Parse({"--verbose=false"}).ok());
  EXPECT_FALSE(verbose_);
}

TEST_F(OptionsTest, NegativeIntegerAsSeparateValue) {
  ASSERT_TRUE(Parse({"--workers", "-1"}).ok());
  EXPECT_EQ(workers_, -1);
}

TEST_F(OptionsTest, LastScalarFlagWins) {
  ASSERT_TRUE(Parse({"--workers=1", "--workers=2"}).ok());
  EXPECT_EQ(workers_, 2);
}

TEST_F(OptionsTest, UnknownFlagIsNamed) {
  absl::Status status = Parse({"--listen=x", "--lisen=y"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--lisen"));
}

TEST_F(OptionsTest, BadValuesNameTheOption) {
  absl::Status status = Parse({"--workers=many"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--workers"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("many"));

  status = Parse({"--timeout=10"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--timeout"));

  status = Parse({"--verbose=maybe"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--verbose"));
}

TEST_F(OptionsTest, MissingValueAndPositionalArgumentsAreErrors) {
  absl::Status status = Parse({"--listen"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--listen needs a value"));

  status = Parse({"--listen", "--verbose"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);

  status = Parse({"stray"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("stray"));
}

TEST_F(OptionsTest, HelpIsReportedAndSetsNothing) {
  ASSERT_TRUE(Parse({"--workers=9", "--help"}).ok());
  EXPECT_TRUE(options_.help_requested());
  EXPECT_EQ(workers_, 4);
}

TEST_F(OptionsTest, UsageShowsOptionsWithDefaults) {
  std::string usage = options_.Usage();
  EXPECT_THAT(usage, HasSubstr("eofaas-test: a program under test."));
  EXPECT_THAT(usage, HasSubstr("--config=FILE"));
  EXPECT_THAT(usage, HasSubstr("--listen=STRING  (default: \"127.0.0.1:7070\")"));
  EXPECT_THAT(usage, HasSubstr("--workers=INT  (default: 4)"));
  EXPECT_THAT(usage, HasSubstr("--timeout=DURATION  (default: 10s)"));
  EXPECT_THAT(usage, HasSubstr("(default: [/data])"));
  EXPECT_THAT(usage, HasSubstr("Worker threads."));
}

TEST_F(OptionsTest, ConfigFileSetsOptionsAndFlagsOverrideItWherever) {
  std::string path = WriteFile("options_ok.yaml",
                               "listen: 0.0.0.0:9000\n"
                               "workers: 8\n"
                               "verbose: true\n"
                               "timeout: 2s\n"
                               "root:\n"
                               "  - /x\n"
                               "  - /y\n");
  // The flag comes before --config and still wins.
  absl::Status status = Parse({"--workers=3", "--config", path});
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(listen_, "0.0.0.0:9000");
  EXPECT_EQ(workers_, 3);
  EXPECT_TRUE(verbose_);
  EXPECT_EQ(timeout_, absl::Seconds(2));
  EXPECT_EQ(roots_, (std::vector<std::string>{"/x", "/y"}));
}

TEST_F(OptionsTest, ListFlagsReplaceTheFilesList) {
  std::string path = WriteFile("options_list.yaml", "root: [/x, /y]\n");
  ASSERT_TRUE(Parse({"--config=" + path, "--root=/z"}).ok());
  EXPECT_EQ(roots_, std::vector<std::string>{"/z"});
}

TEST_F(OptionsTest, EmptyConfigFileSetsNothing) {
  std::string path = WriteFile("options_empty.yaml", "# nothing\n");
  ASSERT_TRUE(Parse({"--config=" + path}).ok());
  EXPECT_EQ(workers_, 4);
}

TEST_F(OptionsTest, UnknownYamlKeyNamesFileLineAndKey) {
  std::string path = WriteFile("options_unknown.yaml", "listen: x\nworkerz: 3\n");
  absl::Status status = Parse({"--config=" + path});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path + ":2:"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("workerz"));
}

TEST_F(OptionsTest, BadYamlValueNamesFileLineAndOption) {
  std::string path = WriteFile("options_bad_value.yaml", "workers: 3\ntimeout: soon\n");
  absl::Status status = Parse({"--config=" + path});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path + ":2:"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("timeout"));

  path = WriteFile("options_bad_shape.yaml", "workers: [1, 2]\n");
  status = Parse({"--config=" + path});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("workers"));

  path = WriteFile("options_bad_list.yaml", "root: /x\n");
  status = Parse({"--config=" + path});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("root"));
}

TEST_F(OptionsTest, MalformedYamlNamesFileAndLine) {
  std::string path = WriteFile("options_malformed.yaml", "listen: x\nworkers: [1, 2\n");
  absl::Status status = Parse({"--config=" + path});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path + ":"));
}

TEST_F(OptionsTest, TopLevelMustBeAMapping) {
  std::string path = WriteFile("options_list_root.yaml", "- a\n- b\n");
  absl::Status status = Parse({"--config=" + path});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
}

TEST_F(OptionsTest, MissingConfigFileIsNamed) {
  absl::Status status = Parse({"--config=/nonexistent/eofaas.yaml"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("/nonexistent/eofaas.yaml"));
}

TEST_F(OptionsTest, ConfigGivenTwiceIsAnError) {
  std::string path = WriteFile("options_twice.yaml", "workers: 1\n");
  EXPECT_EQ(Parse({"--config=" + path, "--config=" + path}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(OptionsRegistrationTest, DuplicateNameFailsParse) {
  std::string a, b;
  Options options("dup");
  options.AddString("name", "first", &a);
  options.AddString("name", "second", &b);
  char program[] = "eofaas-test";
  char* argv[] = {program};
  absl::Status status = options.Parse(1, argv);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--name"));
}

TEST(CheckListenAddressTest, AcceptsHostAndPortUpTo65535) {
  for (const char* address : {"127.0.0.1:0", "0.0.0.0:65535", "localhost:50051", "[::1]:8080"}) {
    EXPECT_TRUE(CheckListenAddress("listen", address).ok()) << address;
  }
}

TEST(CheckListenAddressTest, NamesTheOptionOfAnythingElse) {
  for (const char* address :
       {"127.0.0.1:65536", "127.0.0.1:99999", "127.0.0.1", ":8080", "127.0.0.1:", "127.0.0.1:-1",
        "127.0.0.1:8o80", "::1:8080", "[]:80", "127.0.0.1:000065535"}) {
    absl::Status status = CheckListenAddress("metrics_listen", address);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << address;
    EXPECT_THAT(std::string(status.message()), HasSubstr("metrics_listen: ")) << address;
  }
}

}  // namespace
}  // namespace eofaas::common
