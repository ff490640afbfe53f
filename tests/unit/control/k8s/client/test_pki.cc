#include "tests/unit/control/k8s/client/test_pki.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/subprocess.h"

namespace eofaas::tests {
namespace {

absl::Status OpenSsl(const std::string& dir, std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), "/usr/bin/openssl");
  common::SpawnOptions options{.argv = arguments, .env = {"PATH=/usr/bin:/bin"}, .cwd = dir};
  absl::StatusOr<common::RunResult> run = common::Run(options, absl::Seconds(30));
  if (!run.ok()) return run.status();
  if (!run->ok()) {
    return absl::InternalError(absl::StrCat("openssl ", arguments[1], ": ", run->output));
  }
  return absl::OkStatus();
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// A new key `name`.key and a certificate `name`.crt for `subject`, signed by ca.crt with
// `extensions` (openssl x509v3 configuration lines).
absl::Status Issue(const std::string& dir, const std::string& name, const std::string& subject,
                   const std::string& extensions) {
  std::ofstream(dir + "/" + name + ".ext") << extensions;
  if (absl::Status status = OpenSsl(
          dir, {"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", subject});
      !status.ok()) {
    return status;
  }
  return OpenSsl(
      dir, {"x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", name + ".crt", "-extfile", name + ".ext"});
}

absl::Status MakeCa(const std::string& dir, const std::string& name) {
  return OpenSsl(
      dir, {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".crt", "-days", "2", "-subj", "/CN=" + name});
}

}  // namespace

absl::StatusOr<TestPki> MakeTestPki(const std::string& dir) {
  for (absl::Status status :
       {MakeCa(dir, "ca"), MakeCa(dir, "other-ca"),
        Issue(dir, "server", "/CN=kube-apiserver",
              "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        Issue(dir, "elsewhere", "/CN=elsewhere",
              "subjectAltName=DNS:elsewhere.example.com\nextendedKeyUsage=serverAuth\n"),
        Issue(dir, "client", "/O=eofaas/CN=eofaas-control", "extendedKeyUsage=clientAuth\n")}) {
    if (!status.ok()) return status;
  }
  return TestPki{.ca_pem = Read(dir + "/ca.crt"),
                 .server_certificate_pem = Read(dir + "/server.crt"),
                 .server_key_pem = Read(dir + "/server.key"),
                 .client_certificate_pem = Read(dir + "/client.crt"),
                 .client_key_pem = Read(dir + "/client.key"),
                 .elsewhere_certificate_pem = Read(dir + "/elsewhere.crt"),
                 .elsewhere_key_pem = Read(dir + "/elsewhere.key"),
                 .other_ca_pem = Read(dir + "/other-ca.crt")};
}

}  // namespace eofaas::tests
