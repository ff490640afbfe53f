// What the API client's tests share: certificates made at start, a fake API server presenting
// them, clients configured for it, and a thread-safe record of watch events.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "control/k8s/client/kube_client.h"
#include "control/k8s/yaml.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/control/k8s/client/fake_api_server.h"
#include "tests/unit/control/k8s/client/test_pki.h"
#include "yaml-cpp/yaml.h"

namespace eofaas::control::k8s {

class ApiServerTest : public ::testing::Test {
 protected:
  static constexpr char kToken[] = "token-1";
  static constexpr char kNamespace[] = "fns";

  void SetUp() override {
    absl::StatusOr<tests::TestPki> pki = tests::MakeTestPki(dir_.path().string());
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
  }

  /// (Re)starts the server with, unless `options` names them, the test CA's certificate for
  /// 127.0.0.1 and the token kToken.
  void StartServer(tests::FakeApiServerOptions options = {}) {
    server_.reset();
    if (options.certificate_pem.empty()) {
      options.certificate_pem = pki_.server_certificate_pem;
      options.key_pem = pki_.server_key_pem;
    }
    if (options.tokens.empty()) options.tokens = {kToken};
    server_ = std::make_unique<tests::FakeApiServer>(std::move(options));
  }

  /// The server, trusted through the test CA, with kToken.
  KubeConfig Config() const {
    return {.server = server_->url(), .certificate_authority_pem = pki_.ca_pem, .token = kToken};
  }

  static std::unique_ptr<KubeClient> Client(const KubeConfig& config,
                                            KubeClientOptions options = {}) {
    absl::StatusOr<std::unique_ptr<KubeClient>> client = KubeClient::Create(config, options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  static YAML::Node ConfigMap(const std::string& name, const std::string& tier = "a") {
    YAML::Node object = YAML::Load(R"(
apiVersion: v1
kind: ConfigMap
metadata: {namespace: fns, labels: {app.kubernetes.io/managed-by: eofaas}}
data: {port: "8080"}
)");
    object["metadata"]["name"] = String(name);
    object["metadata"]["labels"]["tier"] = String(tier);  // "y" would read as a boolean
    return object;
  }

  static YAML::Node Deployment(const std::string& name, int replicas) {
    YAML::Node object = YAML::Load(R"(
apiVersion: apps/v1
kind: Deployment
metadata: {namespace: fns}
spec:
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers: [{name: function, image: "registry.example.com/echo:1", ports: [{containerPort: 8080}]}]
)");
    object["metadata"]["name"] = String(name);
    object["spec"]["replicas"] = replicas;
    return object;
  }

  static constexpr char kConfigMaps[] = "/api/v1/namespaces/fns/configmaps";
  static constexpr char kDeployments[] = "/apis/apps/v1/namespaces/fns/deployments";

  tests::TempDir dir_;
  tests::TestPki pki_;
  std::unique_ptr<tests::FakeApiServer> server_;
};

/// metadata.<key> of an object, or "".
inline std::string Meta(const boost::json::object& object, std::string_view key) {
  const boost::json::value* metadata = object.if_contains("metadata");
  if (metadata == nullptr || !metadata->is_object()) return "";
  const boost::json::value* value = metadata->get_object().if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : "";
}

/// What a watch or an informer reported, for a test thread to wait on.
class EventLog {
 public:
  void Add(std::string entry) {
    std::lock_guard lock(mutex_);
    entries_.push_back(std::move(entry));
    added_.notify_all();
  }
  /// Waits (at most 10 s) until `count` entries have come, and returns them all.
  std::vector<std::string> WaitFor(size_t count) {
    std::unique_lock lock(mutex_);
    added_.wait_for(lock, std::chrono::seconds(10), [&] { return entries_.size() >= count; });
    return entries_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable added_;
  std::vector<std::string> entries_;
};

/// "ADDED a", "BOOKMARK ", ...
inline std::string Describe(const WatchEvent& event) {
  constexpr const char* kTypes[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK"};
  return std::string(kTypes[static_cast<int>(event.type)]) + " " + Meta(event.object, "name");
}

}  // namespace eofaas::control::k8s
