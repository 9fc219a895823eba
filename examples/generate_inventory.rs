//! Generates a realistic inventory and a matching simulator scenario, for the
//! demo and the benchmark. Deterministic for a given seed.
//!
//! ```text
//! cargo run --release --example generate_inventory -- ROWS PROJECTS OUT_DIR [SEED]
//! ```
//!
//! Writes `OUT_DIR/inventory.csv` and `OUT_DIR/scenario.json`. About one row in
//! twelve is `off`, one in a hundred is not found, and a few respond 503 once.

use std::fmt::Write as _;
use std::path::PathBuf;

use rand::{RngExt, SeedableRng};

const REGIONS: &[&str] = &[
    "cn-north-4",
    "ap-southeast-1",
    "af-south-1",
    "cn-east-3",
    "ap-southeast-3",
];
const TEAMS: &[(&str, &str)] = &[
    ("payments", "li.wei@example.com"),
    ("identity", "amara.okafor@example.com"),
    ("search", "jonas.berg@example.com"),
    ("analytics", "priya.natarajan@example.com"),
    ("logistics", "mateo.garcia@example.com"),
    ("platform", "chen.jing@example.com"),
];
const ENVIRONMENTS: &[&str] = &["production", "production", "staging", "development"];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        anyhow::bail!("usage: generate_inventory ROWS PROJECTS OUT_DIR [SEED]");
    }
    let rows: usize = args[1].parse()?;
    let project_count: usize = args[2].parse()?;
    let out = PathBuf::from(&args[3]);
    let seed: u64 = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(2026);
    std::fs::create_dir_all(&out)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let hex = |rng: &mut rand::rngs::StdRng, len: usize| -> String {
        (0..len)
            .map(|_| char::from_digit(rng.random_range(0..16), 16).expect("digit"))
            .collect()
    };
    let projects: Vec<(String, &str)> = (0..project_count)
        .map(|i| (hex(&mut rng, 32), REGIONS[i % REGIONS.len()]))
        .collect();

    let mut csv = csv::Writer::from_path(out.join("inventory.csv"))?;
    csv.write_record([
        "project_id",
        "instance_id",
        "region",
        "name",
        "owner",
        "team",
        "environment",
    ])?;
    let mut instances = serde_json::Map::new();
    for index in 0..rows {
        let (project, region) = &projects[rng.random_range(0..projects.len())];
        let instance = format!("{}in07", hex(&mut rng, 32));
        let (team, owner) = TEAMS[rng.random_range(0..TEAMS.len())];
        let environment = ENVIRONMENTS[rng.random_range(0..ENVIRONMENTS.len())];
        let mut name = String::new();
        write!(name, "{team}-{environment}-db-{index:04}")?;
        csv.write_record([
            project.as_str(),
            &instance,
            region,
            &name,
            owner,
            team,
            environment,
        ])?;
        let roll = rng.random_range(0..100);
        let answer = match roll {
            0..=7 => serde_json::json!("off"),
            8 => serde_json::json!("not_found"),
            9 if index % 7 == 0 => {
                serde_json::json!([{"status": 503, "error_code": "SYS.0503", "error_msg": "Service temporarily unavailable"}, "on"])
            }
            _ => continue,
        };
        instances.insert(instance, answer);
    }
    csv.flush()?;
    let scenario = serde_json::json!({ "default_status": "on", "instances": instances });
    std::fs::write(
        out.join("scenario.json"),
        serde_json::to_string_pretty(&scenario)? + "\n",
    )?;
    eprintln!(
        "wrote {} rows over {} projects to {}",
        rows,
        project_count,
        out.display()
    );
    Ok(())
}
