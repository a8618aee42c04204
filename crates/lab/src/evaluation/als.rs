//! Implicit-feedback matrix factorisation (Hu, Koren and Volinsky's ALS): the collaborative
//! baseline of the evaluation. Every renter and listing gets a `FACTORS`-dimensional vector; a
//! renter's interactions with a listing (weighted as the profile weighs them, summed) give a
//! confidence `1 + ALPHA * w` that they prefer it, and alternating least squares fits the
//! vectors to those preferences (all other pairs: preference 0, confidence 1), with an L2
//! penalty `LAMBDA`. Offline only: the server does not serve it (a model that does not beat it
//! is gated to the best servable baseline).
//!
//! Written by hand: a factorisation of a few thousand renters by tens of thousands of listings
//! needs a k x k Cholesky solve per row, nothing a linear-algebra dependency would earn its
//! build time for. Deterministic: seeded initialisation, rows in id order.
use crate::datagen::Rng;
use entity::InteractionKind;
use rentgraph_model::features::interaction_weight;
use std::collections::HashMap;
use uuid::Uuid;

pub(super) const FACTORS: usize = 48;
const LAMBDA: f64 = 1.0;
const ALPHA: f64 = 5.0;
const ITERATIONS: usize = 8;

pub(super) struct Als {
    users: HashMap<Uuid, usize>,
    items: HashMap<Uuid, usize>,
    user_f: Vec<f64>,
    item_f: Vec<f64>,
}

/// Solves `a x = b` for a symmetric positive definite `a` (n x n, row-major) in place of `b`.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], n: usize) {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        let d = d.max(1e-12).sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
}

/// One half-step: each row's vector given the other side's (`other`, `m` rows).
fn solve_side(rows: &[Vec<(usize, f64)>], other: &[f64], m: usize, out: &mut [f64]) {
    let k = FACTORS;
    // YtY over every row of the other side (the zeros' contribution).
    let mut yty = vec![0.0; k * k];
    for r in 0..m {
        let y = &other[r * k..(r + 1) * k];
        for a in 0..k {
            for b in 0..k {
                yty[a * k + b] += y[a] * y[b];
            }
        }
    }
    let mut a = vec![0.0; k * k];
    let mut rhs = vec![0.0; k];
    for (row, entries) in rows.iter().enumerate() {
        a.copy_from_slice(&yty);
        rhs.iter_mut().for_each(|x| *x = 0.0);
        for d in 0..k {
            a[d * k + d] += LAMBDA;
        }
        for &(j, c) in entries {
            let y = &other[j * k..(j + 1) * k];
            for p in 0..k {
                rhs[p] += c * y[p];
                for q in 0..k {
                    a[p * k + q] += (c - 1.0) * y[p] * y[q];
                }
            }
        }
        cholesky_solve(&mut a, &mut rhs, k);
        out[row * k..(row + 1) * k].copy_from_slice(&rhs);
    }
}

impl Als {
    /// Fits the factors to these interactions (any order).
    pub(super) fn fit(
        interactions: impl IntoIterator<Item = (Uuid, Uuid, InteractionKind)>,
        seed: u64,
    ) -> Self {
        let mut w: HashMap<(Uuid, Uuid), f64> = HashMap::new();
        for (u, i, kind) in interactions {
            let x = f64::from(interaction_weight(kind));
            if x > 0.0 {
                *w.entry((u, i)).or_default() += x;
            }
        }
        let mut pairs: Vec<((Uuid, Uuid), f64)> = w.into_iter().collect();
        pairs.sort_by_key(|p| p.0);
        let index = |ids: &mut Vec<Uuid>| -> HashMap<Uuid, usize> {
            ids.sort_unstable();
            ids.dedup();
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect()
        };
        let users = index(&mut pairs.iter().map(|p| p.0.0).collect());
        let items = index(&mut pairs.iter().map(|p| p.0.1).collect());
        let (nu, ni, k) = (users.len(), items.len(), FACTORS);
        let mut by_user: Vec<Vec<(usize, f64)>> = vec![Vec::new(); nu];
        let mut by_item: Vec<Vec<(usize, f64)>> = vec![Vec::new(); ni];
        for ((u, i), x) in &pairs {
            let c = 1.0 + ALPHA * x;
            by_user[users[u]].push((items[i], c));
            by_item[items[i]].push((users[u], c));
        }
        let mut rng = Rng::new(seed);
        let mut item_f: Vec<f64> = (0..ni * k).map(|_| 0.1 * rng.normal()).collect();
        let mut user_f = vec![0.0; nu * k];
        for _ in 0..ITERATIONS {
            solve_side(&by_user, &item_f, ni, &mut user_f);
            solve_side(&by_item, &user_f, nu, &mut item_f);
        }
        Self {
            users,
            items,
            user_f,
            item_f,
        }
    }

    /// The renter's predicted preference for a listing (`None`: either is unknown).
    pub(super) fn score(&self, user: &Uuid, item: &Uuid) -> Option<f64> {
        let (u, i) = (self.users.get(user)?, self.items.get(item)?);
        let k = FACTORS;
        let x = &self.user_f[u * k..(u + 1) * k];
        let y = &self.item_f[i * k..(i + 1) * k];
        Some(x.iter().zip(y).map(|(a, b)| a * b).sum())
    }

    pub(super) fn knows(&self, user: &Uuid) -> bool {
        self.users.contains_key(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        // [4 2; 2 3] x = [2; 1] -> x = [0.5, 0]
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 1.0];
        cholesky_solve(&mut a, &mut b, 2);
        assert!((b[0] - 0.5).abs() < 1e-12 && b[1].abs() < 1e-12, "{b:?}");
    }

    #[test]
    fn renters_who_share_listings_are_predicted_to_share_the_next_one() {
        use InteractionKind::Save;
        // Two groups of renters, each saving its own five listings; one renter of group A has
        // saved only four of them: the fifth should score above every listing of group B.
        let id = |n: u128| Uuid::from_u128(n);
        let mut rows = Vec::new();
        for u in 0..20u128 {
            let (base, group_items) = if u < 10 { (100, 5) } else { (200, 5) };
            for i in 0..group_items {
                if u == 0 && i == 4 {
                    continue;
                }
                rows.push((id(u), id(base + i), Save));
            }
        }
        let als = Als::fit(rows, 1);
        let fifth = als.score(&id(0), &id(104)).expect("known");
        for j in 200..205 {
            let other = als.score(&id(0), &id(j)).expect("known");
            assert!(fifth > other, "{fifth} vs {other}");
        }
        assert!(als.score(&id(999), &id(104)).is_none());
    }
}
