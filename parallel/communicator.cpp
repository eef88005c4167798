#include "parallel/communicator.h"

namespace ladder::parallel {

CommHandle& CommHandle::operator=(CommHandle&& o) noexcept {
  if (this != &o) {
    // The overwritten operation must finish before its buffer may be reused.
    try {
      wait();
    } catch (...) {
    }
    p_ = std::move(o.p_);
  }
  return *this;
}

CommHandle::~CommHandle() {
  try {
    wait();
  } catch (...) {
    // A destructor cannot report; the failing collective has already thrown (or will abort) elsewhere.
  }
}

void CommHandle::wait() {
  if (!p_) return;
  // Release first: a second wait() (or the destructor after a throw) must not touch a dead request.
  std::unique_ptr<Pending> p = std::move(p_);
  p->wait();
}

bool CommHandle::test() {
  if (!p_) return true;
  return p_->test();
}

}  // namespace ladder::parallel
