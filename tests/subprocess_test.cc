#include "weir/testing/subprocess.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace weir::testing {
namespace {

// Listens on 127.0.0.1:`port`; the socket, or -1.
int Listen(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 1) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(PickFreePortTest, GivesPortsToListenOnBelowTheEphemeralRange) {
  std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  range >> low;
  std::set<int> ports;
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<int> port = PickFreePort();
    ASSERT_TRUE(port.ok()) << port.status();
    // Each is free to listen on, even with the earlier ones held.
    const int fd = Listen(*port);
    EXPECT_GE(fd, 0) << "port " << *port;
    fds.push_back(fd);
    ports.insert(*port);
    // Outside the range the kernel gives to connections, when the range
    // leaves room below it (the default, 32768-60999, does).
    if (low > 11'000) {
      EXPECT_GE(*port, 10'000);
      EXPECT_LT(*port, low);
    }
  }
  EXPECT_EQ(ports.size(), 20u);
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
}

}  // namespace
}  // namespace weir::testing
