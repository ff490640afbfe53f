#include "proxy/discovery/static_endpoints.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "tests/support/temp_dir.h"

namespace eofaas::proxy {
namespace {

TEST(StaticEndpointsTest, ReadsFunctionsAndReplicas) {
  tests::TempDir dir;
  std::string path = dir.Write("endpoints.yaml", R"(functions:
  echo:
    - address: 127.0.0.1:9001
      concurrency: 64
    - address: 127.0.0.1:9002
    - address: "[::1]:9003"
      concurrency: 10000
  empty: []
)");
  auto endpoints = LoadStaticEndpoints(path);
  ASSERT_TRUE(endpoints.ok()) << endpoints.status();
  ASSERT_EQ(endpoints->size(), 2u);
  const auto& echo = endpoints->at("echo");
  ASSERT_EQ(echo.size(), 3u);
  EXPECT_EQ(echo[0].address, "127.0.0.1:9001");
  EXPECT_EQ(echo[0].concurrency, 64);
  EXPECT_EQ(echo[1].concurrency, 1);
  EXPECT_EQ(echo[2].address, "[::1]:9003");
  EXPECT_EQ(echo[2].concurrency, 10000);
  EXPECT_TRUE(endpoints->at("empty").empty());

  // Nothing written means nothing listed.
  for (const char* empty : {"", "functions:\n", "functions:\n  none:\n"}) {
    endpoints = LoadStaticEndpoints(dir.Write("endpoints.yaml", empty));
    ASSERT_TRUE(endpoints.ok()) << empty << ": " << endpoints.status();
    EXPECT_TRUE(endpoints->empty() || endpoints->at("none").empty()) << empty;
  }
}

TEST(StaticEndpointsTest, RejectsAnythingElseNamingTheProblem) {
  tests::TempDir dir;
  struct Case {
    std::string yaml, expected;
  };
  for (const Case& c : std::vector<Case>{
           {"function:\n  echo: []\n", "unknown key \"function\""},
           {"functions:\n  echo:\n    - address: 127.0.0.1:1\n      weight: 2\n", "weight"},
           {"functions:\n  echo:\n    - address: nowhere\n", "host:port"},
           {"functions:\n  echo:\n    - address: a:1\n      concurrency: 0\n", "concurrency"},
           {"functions:\n  Bad_Name: []\n", "RFC 1123"},
           {"functions: [\n", "endpoints.yaml"},
           {"- functions\n", "a map with one key"},
           {"functions: 5\n", "a map of function names"},
           {"functions:\n  echo: foo\n", "echo: a list of replicas"},
           {"functions:\n  echo:\n    - address: 127.0.0.1:99999\n", "port from 1 to 65535"},
           {"functions:\n  echo:\n    - address: \":\"\n", "host:port"},
           {"functions:\n  echo:\n    - address: \"[::1:80\"\n", "host:port"},
           {"functions:\n  echo:\n    - address: a:1\n      concurrency: 2147483647\n",
            "between 1 and 10000"},
           {"functions:\n  echo: []\n  echo: []\n", "function echo listed twice"},
           {"functions:\n  echo:\n    - address: a:1\n    - address: a:1\n",
            "replica a:1 listed twice"},
       }) {
    std::string path = dir.Write("endpoints.yaml", c.yaml);
    auto endpoints = LoadStaticEndpoints(path);
    EXPECT_EQ(endpoints.status().code(), absl::StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_TRUE(absl::StrContains(endpoints.status().message(), c.expected))
        << c.yaml << " → " << endpoints.status();
  }
  EXPECT_EQ(LoadStaticEndpoints(dir / "missing.yaml").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace eofaas::proxy
