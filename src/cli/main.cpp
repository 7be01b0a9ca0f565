// The palign command: parses flags and calls the modules. All error translation happens here.
#include <cstdio>

int main(int argc, char** argv) {
  std::puts("palign");
  return 0;
}
