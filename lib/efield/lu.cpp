// Dense LU with partial pivoting for the boundary-element system, on all threads with a result
// that does not depend on their number (Eigen's own LU runs on one thread here).
//
// Recursive on columns (Toledo 1997, "Locality of reference in LU decomposition with partial
// pivoting"): factor the left half, swap and solve the right half's top, update the trailing
// block with one matrix product, factor it. The products and triangular solves that carry almost
// all of the work are split into column panels of a fixed width, so each panel's arithmetic is
// the same whatever the thread count.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "internal.hpp"
#include "tmsplan/parallel.hpp"

namespace tmsplan::efield::detail {

namespace {

constexpr Eigen::Index kPanel = 768;  // rows and columns of the parallel tiles and panels
constexpr Eigen::Index kLeaf = 16;    // columns factored without recursion

using Block = Eigen::Ref<Eigen::MatrixXf, 0, Eigen::OuterStride<>>;

// Calls body(i) for i in [0, count): on the threads when `parallel` (each piece's arithmetic is
// the same wherever it runs), else in order.
template <class F> void each(std::int64_t count, bool parallel, F&& body) {
  if (!parallel || count <= 1) {
    for (std::int64_t i = 0; i < count; ++i) body(i);
    return;
  }
  parallel_for(count, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) body(i);
  });
}

// Calls body(first column, width) over [0, n) in fixed panels, on the threads when worth it.
template <class F> void panels(Eigen::Index n, Eigen::Index work_per_column, F&& body) {
  each((n + kPanel - 1) / kPanel, work_per_column >= 64 * 64, [&](std::int64_t i) {
    const Eigen::Index c = static_cast<Eigen::Index>(i) * kPanel;
    body(c, std::min(kPanel, n - c));
  });
}

// Row swaps piv[k] (relative to row `first`) for k in [k0, k1) applied to columns of `a`.
void swap_rows(Block a, const std::vector<Eigen::Index>& piv, Eigen::Index k0, Eigen::Index k1, Eigen::Index first) {
  panels(a.cols(), k1 - k0, [&](Eigen::Index c, Eigen::Index w) {
    for (Eigen::Index j = c; j < c + w; ++j)
      for (Eigen::Index k = k0; k < k1; ++k)
        if (piv[static_cast<std::size_t>(k)] != k)
          std::swap(a(k - first, j), a(piv[static_cast<std::size_t>(k)] - first, j));
  });
}

// Factors the m x n block (m >= n) whose top-left element is the diagonal element `first` of the
// whole matrix; piv[first + k] is the row (of the whole matrix) swapped with row first + k.
void factor(Block a, Eigen::Index first, std::vector<Eigen::Index>& piv, bool& singular) {
  const Eigen::Index m = a.rows(), n = a.cols();
  if (n <= kLeaf) {
    for (Eigen::Index k = 0; k < n; ++k) {
      Eigen::Index p = k;
      a.col(k).tail(m - k).cwiseAbs().maxCoeff(&p);
      p += k;
      piv[static_cast<std::size_t>(first + k)] = first + p;
      if (p != k) a.row(k).swap(a.row(p));
      const float d = a(k, k);
      if (d == 0) {
        singular = true;
        continue;
      }
      a.col(k).tail(m - k - 1) /= d;
      if (k + 1 < n)
        a.bottomRightCorner(m - k - 1, n - k - 1).noalias() -=
            a.col(k).tail(m - k - 1) * a.row(k).segment(k + 1, n - k - 1);
    }
    return;
  }
  const Eigen::Index n1 = n / 2, n2 = n - n1;
  factor(a.leftCols(n1), first, piv, singular);
  swap_rows(a.rightCols(n2), piv, first, first + n1, first);
  const auto l11 = a.topLeftCorner(n1, n1);
  auto right = a.rightCols(n2);
  panels(n2, n1 * n1, [&](Eigen::Index c, Eigen::Index w) {
    l11.triangularView<Eigen::UnitLower>().solveInPlace(right.block(0, c, n1, w));
  });
  // A22 -= A21 A12 in fixed tiles (each packs only its own rows of A21 and columns of A12).
  const auto a21 = a.bottomLeftCorner(m - n1, n1);
  const Eigen::Index rows = m - n1, tr = (rows + kPanel - 1) / kPanel, tc = (n2 + kPanel - 1) / kPanel;
  each(tr * tc, n1 >= 64, [&](std::int64_t t) {
    const Eigen::Index r = (t / tc) * kPanel, c = (t % tc) * kPanel;
    const Eigen::Index h = std::min(kPanel, rows - r), w = std::min(kPanel, n2 - c);
    right.block(n1 + r, c, h, w).noalias() -= a21.middleRows(r, h) * right.block(0, c, n1, w);
  });
  factor(a.bottomRightCorner(m - n1, n2), first + n1, piv, singular);
  swap_rows(a.bottomLeftCorner(m - n1, n1), piv, first + n1, first + n, first + n1);
}

}  // namespace

void DenseLu::compute(const Eigen::MatrixXd& a) {
  lu_ = a.cast<float>();
  const Eigen::Index n = lu_.rows();
  piv_.assign(static_cast<std::size_t>(n), 0);
  bool singular = false;
  factor(lu_.block(0, 0, n, n), 0, piv_, singular);
  singular_ = singular;
}

Eigen::MatrixXd DenseLu::solve(const Eigen::MatrixXd& rhs) const {
  Eigen::MatrixXf b = rhs.cast<float>();
  const Eigen::Index n = lu_.rows();
  for (Eigen::Index k = 0; k < n; ++k)
    if (piv_[static_cast<std::size_t>(k)] != k) b.row(k).swap(b.row(piv_[static_cast<std::size_t>(k)]));
  // Fixed panels of right-hand sides: a column's arithmetic does not depend on the batch split.
  constexpr Eigen::Index kRhs = 64;  // wide: each panel packs the triangular factors anew
  each((b.cols() + kRhs - 1) / kRhs, true, [&](std::int64_t i) {
    const Eigen::Index c = static_cast<Eigen::Index>(i) * kRhs, w = std::min(kRhs, b.cols() - c);
    auto x = b.middleCols(c, w);
    lu_.triangularView<Eigen::UnitLower>().solveInPlace(x);
    lu_.triangularView<Eigen::Upper>().solveInPlace(x);
  });
  return b.cast<double>();
}

}  // namespace tmsplan::efield::detail
