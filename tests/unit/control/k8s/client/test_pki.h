// Certificates for tests that speak TLS, made at test start with the openssl command.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace eofaas::tests {

/// PEM texts, and the files they were written to in the directory given to MakeTestPki.
struct TestPki {
  /// The cluster's CA, and a server certificate it signed for 127.0.0.1 and localhost.
  std::string ca_pem;
  std::string server_certificate_pem;
  std::string server_key_pem;
  /// A client certificate the same CA signed, for the user "eofaas-control" (its CN), in the
  /// files client.crt and client.key.
  std::string client_certificate_pem;
  std::string client_key_pem;
  /// A server certificate the CA signed for another name (elsewhere.example.com) only.
  std::string elsewhere_certificate_pem;
  std::string elsewhere_key_pem;
  /// A CA that signed nothing here: a server's certificate never verifies against it.
  std::string other_ca_pem;
};

/// Writes keys and certificates (EC P-256, valid for two days) into `dir`. INTERNAL with openssl's
/// output when a command fails.
absl::StatusOr<TestPki> MakeTestPki(const std::string& dir);

}  // namespace eofaas::tests
