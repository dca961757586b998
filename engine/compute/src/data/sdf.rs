//! A neural-field task: the signed distance function of one procedural 3-D shape. The shape
//! (sphere, box or torus, with random size and position) is chosen by the seed, so a zoo over
//! several datasets of this kind holds fields of different shapes, as in HyperDiffusion.
//! Points are drawn uniformly in [-1, 1]³; the target is the signed distance (negative inside).
//! One dataset can hold many shapes ([`many_shape_points`]): a zoo on it fits one shape per model.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use weightlab_manifest::ShapeFamily;

use super::Split;

/// A shape with its signed distance function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Sphere { centre: [f32; 3], radius: f32 },
    Box { centre: [f32; 3], half: [f32; 3] },
    Torus { centre: [f32; 3], major: f32, minor: f32 },
}

impl Shape {
    /// A random shape, fully determined by `rng`: of `family` when one is given, else of a
    /// random family.
    pub fn random(rng: &mut ChaCha8Rng, family: Option<ShapeFamily>) -> Self {
        let centre = [rng.random_range(-0.3..0.3), rng.random_range(-0.3..0.3), rng.random_range(-0.3..0.3)];
        let kind = match family {
            Some(ShapeFamily::Sphere) => 0,
            Some(ShapeFamily::Box) => 1,
            Some(ShapeFamily::Torus) => 2,
            None => rng.random_range(0..3),
        };
        match kind {
            0 => Shape::Sphere { centre, radius: rng.random_range(0.2..0.6) },
            1 => Shape::Box { centre, half: [rng.random_range(0.15..0.5), rng.random_range(0.15..0.5), rng.random_range(0.15..0.5)] },
            _ => Shape::Torus { centre, major: rng.random_range(0.3..0.5), minor: rng.random_range(0.08..0.2) },
        }
    }

    /// Signed distance from `p` to the surface.
    pub fn sdf(&self, p: [f32; 3]) -> f32 {
        let rel = |c: [f32; 3]| [p[0] - c[0], p[1] - c[1], p[2] - c[2]];
        let len = |v: [f32; 3]| (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        match *self {
            Shape::Sphere { centre, radius } => len(rel(centre)) - radius,
            Shape::Box { centre, half } => {
                let q = rel(centre);
                let d = [q[0].abs() - half[0], q[1].abs() - half[1], q[2].abs() - half[2]];
                let outside = len([d[0].max(0.0), d[1].max(0.0), d[2].max(0.0)]);
                outside + d[0].max(d[1]).max(d[2]).min(0.0)
            }
            Shape::Torus { centre, major, minor } => {
                let q = rel(centre);
                let ring = (q[0] * q[0] + q[2] * q[2]).sqrt() - major;
                (ring * ring + q[1] * q[1]).sqrt() - minor
            }
        }
    }
}

/// `samples` training and a quarter as many test points of one random shape (of `family`, if
/// given) chosen by `seed`.
pub fn shape_points(samples: usize, seed: u64, family: Option<ShapeFamily>) -> (Split, Split) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shape = Shape::random(&mut rng, family);
    let mut draw = |n: usize| {
        let mut split = Split::default();
        for _ in 0..n {
            let p = [rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)];
            split.x.extend_from_slice(&p);
            split.y.push(shape.sdf(p));
        }
        split
    };
    let train = draw(samples);
    let test = draw(samples.div_ceil(4));
    (train, test)
}

/// `shapes` shapes, each with [`shape_points`]: the splits hold one contiguous block per shape,
/// in shape order. Shape 0 is the shape of `seed` alone, so `shapes = 1` equals [`shape_points`].
pub fn many_shape_points(samples: usize, shapes: usize, seed: u64, family: Option<ShapeFamily>) -> (Split, Split) {
    let mut train = Split::default();
    let mut test = Split::default();
    for s in 0..shapes as u64 {
        let (tr, te) = shape_points(samples, seed.wrapping_add(s.wrapping_mul(0x9E37_79B9_7F4A_7C15)), family);
        train.x.extend(tr.x);
        train.y.extend(tr.y);
        test.x.extend(te.x);
        test.y.extend(te.y);
    }
    (train, test)
}
