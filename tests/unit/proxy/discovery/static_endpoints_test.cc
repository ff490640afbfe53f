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
  empty: []
)");
  auto endpoints = LoadStaticEndpoints(path);
  ASSERT_TRUE(endpoints.ok()) << endpoints.status();
  ASSERT_EQ(endpoints->size(), 2u);
  const auto& echo = endpoints->at("echo");
  ASSERT_EQ(echo.size(), 2u);
  EXPECT_EQ(echo[0].address, "127.0.0.1:9001");
  EXPECT_EQ(echo[0].concurrency, 64);
  EXPECT_EQ(echo[1].concurrency, 1);
  EXPECT_TRUE(endpoints->at("empty").empty());
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
