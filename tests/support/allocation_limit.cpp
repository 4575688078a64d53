// Linked into the loader fuzz tests: a single allocation above 1 GiB throws
// std::bad_alloc instead of being attempted, so a loader that sizes memory from
// a number in the file shows up as a test failure ("unbounded allocation")
// rather than as a machine out of memory. Fuzz inputs are a few kilobytes.
#include <cstdlib>
#include <new>

namespace {
constexpr std::size_t allocation_limit = std::size_t{1} << 30;
}

void* operator new(std::size_t size) {
  if (size > allocation_limit) throw std::bad_alloc();
  if (void* memory = std::malloc(size ? size : 1)) return memory;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete[](void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }
void operator delete[](void* memory, std::size_t) noexcept { std::free(memory); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return size > allocation_limit ? nullptr : std::malloc(size ? size : 1);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept { return operator new(size, tag); }
void operator delete(void* memory, const std::nothrow_t&) noexcept { std::free(memory); }
void operator delete[](void* memory, const std::nothrow_t&) noexcept { std::free(memory); }
