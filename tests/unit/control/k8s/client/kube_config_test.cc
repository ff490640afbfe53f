// Loading the API server's address and credentials: the pod's service account, or a kubeconfig.
#include "control/k8s/client/kube_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "tests/support/temp_dir.h"

namespace eofaas::control::k8s {
namespace {

using ::testing::HasSubstr;

class InClusterConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("token", "service-account-token\n");
    dir_.Write("ca.crt", "CA PEM");
    dir_.Write("namespace", "eofaas-system");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  }
  void TearDown() override {
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
  }
  tests::TempDir dir_;
};

TEST_F(InClusterConfigTest, ReadsTheServiceAccount) {
  absl::StatusOr<KubeConfig> config = LoadInClusterConfig(dir_.path().string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->certificate_authority_pem, "CA PEM");
  // The client reads the file itself, so that it follows the rotation.
  EXPECT_EQ(config->token_file, dir_ / "token");
  EXPECT_EQ(config->token, "");
  EXPECT_EQ(config->namespace_name, "eofaas-system");
}

TEST_F(InClusterConfigTest, BracketsAnIpv6Address) {
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  absl::StatusOr<KubeConfig> config = LoadInClusterConfig(dir_.path().string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://[fd00::1]:443");
}

TEST_F(InClusterConfigTest, OutsideAPodSaysWhatIsMissing) {
  unsetenv("KUBERNETES_SERVICE_HOST");
  absl::StatusOr<KubeConfig> config = LoadInClusterConfig(dir_.path().string());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("KUBERNETES_SERVICE_HOST"));

  SetUp();
  std::filesystem::remove(dir_ / "token");
  config = LoadInClusterConfig(dir_.path().string());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(dir_ / "token"));
}

class KubeconfigTest : public ::testing::Test {
 protected:
  // A kubeconfig with two contexts; `user` is the YAML of the user "robot".
  std::string Write(const std::string& user) {
    return dir_.Write("config/kubeconfig", absl::StrCat(R"(
apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: dev
  context: {cluster: dev, user: robot, namespace: dev-functions}
- name: prod
  context: {cluster: prod, user: robot}
clusters:
- name: dev
  cluster:
    server: https://dev.example.com:6443
    certificate-authority-data: )",
                                                        absl::Base64Escape("DEV CA"), R"(
- name: prod
  cluster: {server: https://prod.example.com, certificate-authority: certs/prod-ca.crt, insecure-skip-tls-verify: false}
users:
- name: robot
  user: )",
                                                        user, "\n"));
  }
  tests::TempDir dir_;
};

TEST_F(KubeconfigTest, TakesTheCurrentContext) {
  absl::StatusOr<KubeConfig> config = LoadKubeconfig(Write("{token: abc}"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://dev.example.com:6443");
  EXPECT_EQ(config->certificate_authority_pem, "DEV CA");
  EXPECT_EQ(config->token, "abc");
  EXPECT_EQ(config->namespace_name, "dev-functions");
}

TEST_F(KubeconfigTest, ReadsFilesRelativeToItself) {
  dir_.Write("config/certs/prod-ca.crt", "PROD CA");
  dir_.Write("config/robot.crt", "CERT");
  dir_.Write("config/robot.key", "KEY");
  absl::StatusOr<KubeConfig> config =
      LoadKubeconfig(Write("{client-certificate: robot.crt, client-key: robot.key}"), "prod");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://prod.example.com");
  EXPECT_EQ(config->certificate_authority_pem, "PROD CA");
  EXPECT_EQ(config->client_certificate_pem, "CERT");
  EXPECT_EQ(config->client_key_pem, "KEY");
  EXPECT_EQ(config->namespace_name, "");

  config = LoadKubeconfig(Write("{tokenFile: token}"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->token_file, dir_ / "config/token");

  config = LoadKubeconfig(
      Write(absl::StrCat("{client-certificate-data: ", absl::Base64Escape("CERT DATA"),
                         ", client-key-data: ", absl::Base64Escape("KEY DATA"), "}")));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->client_certificate_pem, "CERT DATA");
}

TEST_F(KubeconfigTest, ErrorsNameTheKey) {
  const auto error = [&](const std::string& user, const std::string& context = "") {
    absl::StatusOr<KubeConfig> config = LoadKubeconfig(Write(user), context);
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(config.status().message());
  };
  EXPECT_THAT(error("{exec: {command: aws}}"),
              HasSubstr("users[\"robot\"].user.exec: not supported"));
  EXPECT_THAT(error("{username: a, password: b}"), HasSubstr("users[\"robot\"].user.username"));
  EXPECT_THAT(error("{client-certificate-data: Q0VSVA==}"),
              HasSubstr("users[\"robot\"].user.client-key: required"));
  EXPECT_THAT(error("{client-certificate-data: '!!'}"),
              HasSubstr("client-certificate-data: not base64"));
  EXPECT_THAT(error("{token: a}", "staging"), HasSubstr("contexts: no entry named \"staging\""));
  EXPECT_THAT(error("[a, b]"), HasSubstr("users[\"robot\"].user: not a map"));
  EXPECT_THAT(error("{exec: {command: aws}}"), HasSubstr(dir_ / "config/kubeconfig"));

  const std::string no_context = dir_.Write("bare", "apiVersion: v1\nkind: Config\n");
  EXPECT_THAT(std::string(LoadKubeconfig(no_context).status().message()),
              HasSubstr("current-context: not set"));
  const std::string no_server = dir_.Write("no-server", R"(
current-context: a
contexts: [{name: a, context: {cluster: c}}]
clusters: [{name: c, cluster: {}}]
)");
  EXPECT_THAT(std::string(LoadKubeconfig(no_server).status().message()),
              HasSubstr("clusters[\"c\"].cluster.server: required"));
  const std::string broken = dir_.Write("broken", "current-context: [");
  EXPECT_EQ(LoadKubeconfig(broken).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(KubeconfigTest, AMissingFileIsNotFound) {
  EXPECT_EQ(LoadKubeconfig(dir_ / "absent").status().code(), absl::StatusCode::kNotFound);
  // A file the kubeconfig names, too.
  EXPECT_EQ(LoadKubeconfig(Write("{token: a}"), "prod").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace eofaas::control::k8s
