// Golden-file tests: the rendered objects of a few function generations, compared byte for byte
// with tests/unit/control/k8s/golden/*.yaml. The same files are validated against the
// Kubernetes schemas by the k8s_schemas test (tests/k8s_schemas/).
//
// After an intended change of the rendering, regenerate the files and review their diff:
//   cd build && EOFAAS_UPDATE_GOLDEN=1 ctest -R KubernetesGoldenTest
// (or run build/tests/unit/control/k8s/control_k8s_unit_test with that variable set).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/names.h"
#include "control/k8s/render.h"

namespace eofaas::control::k8s {
namespace {

std::string GoldenPath(const std::string& name) {
  return std::string(EOFAAS_SOURCE_DIR) + "/tests/unit/control/k8s/golden/" + name;
}

void ExpectGolden(const std::string& name, const std::string& actual) {
  const std::string path = GoldenPath(name);
  if (std::getenv("EOFAAS_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in.is_open()) << path << " is missing: run with EOFAAS_UPDATE_GOLDEN=1";
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(expected.str(), actual)
      << path << " differs from the rendering; if the change is intended, regenerate it with "
      << "EOFAAS_UPDATE_GOLDEN=1 and review the diff";
}

FunctionGeneration Generation(const std::string& function, const std::string& uid,
                              int64_t generation, const std::string& template_name) {
  return {.namespace_name = "eofaas-functions",
          .function = function,
          .uid = uid,
          .generation = generation,
          .deployment_name = common::DeploymentName(function, uid, generation),
          .template_name = template_name};
}

RegistryConfig Registry() { return {.server = "registry.example.com:5000"}; }

std::vector<YAML::Node> Concat(std::vector<YAML::Node> a, const std::vector<YAML::Node>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(KubernetesGoldenTest, WorkloadWithFixedReplicas) {
  auto generation = Generation("ndvi", "6f1c2d9e-uid", 3, "python3");
  WorkloadSpec spec;
  spec.image = ImageReference(Registry(), "ndvi", "sha256:0123abcd");
  spec.run = {"/usr/bin/python3", "-B", "runtime/server.py"};
  // Values a careless rendering would turn into a number, a boolean or a variable reference.
  spec.env = {{"BAND", "4"}, {"STRICT", "yes"}, {"TEMPLATE", "$(HOME)/x"}, {"EMPTY", ""}};
  spec.concurrency = 8;
  spec.min_replicas = 2;
  spec.max_replicas = 2;
  auto objects = RenderWorkload(generation, spec, Registry());
  ASSERT_TRUE(objects.ok()) << objects.status();
  ExpectGolden("workload_fixed.yaml", ToYaml(*objects));
}

TEST(KubernetesGoldenTest, WorkloadThatAutoscales) {
  auto generation = Generation("tiles", "0a7d-uid", 1, "node20");
  WorkloadSpec spec;
  spec.image = ImageReference(Registry(), "tiles", "sha256:feed");
  spec.run = {"/usr/bin/node", "runtime/server.js"};
  spec.concurrency = 16;
  spec.min_replicas = 0;
  spec.max_replicas = 5;
  spec.drain_timeout = absl::Seconds(45);
  auto objects = RenderWorkload(generation, spec, Registry());
  ASSERT_TRUE(objects.ok()) << objects.status();
  ExpectGolden("workload_autoscaled.yaml", ToYaml(*objects));
}

TEST(KubernetesGoldenTest, BuildKitBuildWithTheContextInAConfigMap) {
  auto generation = Generation("ndvi", "6f1c2d9e-uid", 3, "python3");
  BuildSpec spec;
  spec.image = ImageReference(Registry(), "ndvi", "sha256:0123abcd");
  spec.context_archive = "stands for the .tar.gz of the bundle";
  auto objects = RenderBuild(generation, spec, Registry());
  ASSERT_TRUE(objects.ok()) << objects.status();
  ExpectGolden("build_buildkit.yaml", ToYaml(*objects));
}

TEST(KubernetesGoldenTest, BuildKitBuildWithTheContextInAnObjectStore) {
  auto generation = Generation("ndvi", "6f1c2d9e-uid", 3, "python3");
  BuildSpec spec;
  spec.image = ImageReference(Registry(), "ndvi", "sha256:0123abcd");
  spec.context_url = "https://objects.example.com/eofaas/ndvi/sha256-0123abcd.tar.gz?sig=abc";
  auto objects = RenderBuild(generation, spec, Registry());
  ASSERT_TRUE(objects.ok()) << objects.status();
  ExpectGolden("build_buildkit_object_store.yaml", ToYaml(*objects));
}

TEST(KubernetesGoldenTest, KanikoBuildToAnInsecureRegistry) {
  auto generation = Generation("linecount", "c0ffee-uid", 2, "php8");
  RegistryConfig registry = {.server = "registry.eofaas-system.svc:5000",
                             .repository = "",
                             .secret_name = "eofaas-registry",
                             .insecure = true};
  BuildSpec spec;
  spec.tool = BuildTool::kKaniko;
  spec.image = ImageReference(registry, "linecount", "sha256:beef");
  spec.context_archive = "stands for the .tar.gz of the bundle";
  spec.deadline = absl::Seconds(299.5);
  spec.backoff_limit = 0;
  auto objects = RenderBuild(generation, spec, registry);
  ASSERT_TRUE(objects.ok()) << objects.status();
  ExpectGolden("build_kaniko.yaml", ToYaml(*objects));
}

TEST(KubernetesGoldenTest, RegistrySecret) {
  auto secret = RenderRegistrySecret("eofaas-functions", Registry(),
                                     {.username = "eofaas", .password = "not-a-real-password"});
  ASSERT_TRUE(secret.ok()) << secret.status();
  ExpectGolden("registry_secret.yaml", ToYaml({*secret}));
}

// The longest function name a user may choose, starting with a digit, with a template name that
// is no label value: every name and label still fits.
TEST(KubernetesGoldenTest, LongestNamesAndAnOddTemplateName) {
  const std::string function = "0123456789-abcdefghij-klmnopqrst-uvwxyz0";
  ASSERT_EQ(function.size(), common::kMaxFunctionNameLength);
  auto generation = Generation(function, "uid", 12, "_Python 3.11 (sci)_");
  WorkloadSpec workload;
  workload.image = ImageReference(Registry(), function, "sha256:0123abcd");
  workload.min_replicas = 1;
  workload.max_replicas = 3;
  auto objects = RenderWorkload(generation, workload, Registry());
  ASSERT_TRUE(objects.ok()) << objects.status();
  BuildSpec build;
  build.image = workload.image;
  build.context_archive = "stands for the .tar.gz of the bundle";
  auto build_objects = RenderBuild(generation, build, Registry());
  ASSERT_TRUE(build_objects.ok()) << build_objects.status();
  ExpectGolden("longest_names.yaml", ToYaml(Concat(*objects, *build_objects)));
}

}  // namespace
}  // namespace eofaas::control::k8s
