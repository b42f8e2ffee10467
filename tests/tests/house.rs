//! The house's wiring (issue 16): adding a function or a provider is one
//! obvious change, and a piece left out fails here by name.

use std::collections::BTreeSet;

use vcare_domain::notification::Channel;
use vcare_providers::ProviderId;
use vcare_tests::root;

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The function crates: every folder under functions/.
fn function_dirs() -> BTreeSet<String> {
    std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn template() -> vcare_local::Template {
    vcare_local::Template::load(&root().join("infra/template.yaml")).unwrap()
}

/// The binaries the template builds (`Metadata.BuildProperties.Binary`).
fn template_binaries() -> BTreeSet<String> {
    template()
        .of_type("AWS::Serverless::Function")
        .filter_map(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn every_function_is_a_member_a_dependency_registered_and_deployed() {
    let workspace = read("Cargo.toml");
    let gateway = read("infra/gateway/Cargo.toml");
    let registry: BTreeSet<String> = vcare_local::Registry::vcare().names().map(str::to_owned).collect();
    let binaries = template_binaries();
    let mut missing = Vec::new();
    for f in function_dirs() {
        let mut lack = |what: &str, ok: bool| {
            if !ok {
                missing.push(format!("functions/{f} is not {what}"));
            }
        };
        lack("a workspace member (Cargo.toml [workspace] members)", workspace.contains(&format!("\"functions/{f}\"")));
        lack(
            "a workspace dependency (Cargo.toml [workspace.dependencies])",
            workspace.contains(&format!("{f} = {{ path = \"functions/{f}\" }}")),
        );
        lack(
            "a dependency of the local gateway (infra/gateway/Cargo.toml)",
            gateway.contains(&format!("\n{f}.workspace = true")),
        );
        lack("in the gateway's registry (infra/gateway/src/registry.rs)", registry.contains(&f));
        lack("a function of the template (infra/template.yaml, BuildProperties.Binary)", binaries.contains(&f));
        let main = std::fs::read_to_string(root().join(format!("functions/{f}/src/main.rs"))).unwrap_or_default();
        lack(
            "run by a main.rs that calls its function(env, sdk)",
            main.contains(&format!("{}::function", f.replace('-', "_"))),
        );
    }
    let dirs = function_dirs();
    for name in registry.iter().chain(&binaries) {
        if !dirs.contains(name) {
            missing.push(format!("{name} is registered or deployed but has no crate under functions/"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// Each provider's settings come from one list (`ProviderId::settings`):
/// the template gives dispatch every one of them, and health and every
/// function that accepts notifications those that decide whether a
/// provider is configured, plus each channel's order (a request none of
/// whose channels can be sent is refused at accept).
#[test]
fn the_template_gives_each_function_what_its_providers_need() {
    let template = template();
    let env_of = |id: &str| -> BTreeSet<String> {
        let f = template.resource(id).unwrap_or_else(|| panic!("{id} is in the template"));
        template.function_environment(f).keys().cloned().collect()
    };
    let orders: Vec<String> =
        [Channel::Sms, Channel::Email, Channel::Push].map(|c| vcare_providers::order_setting(c).0.to_owned()).into();
    let mut missing = Vec::new();
    for (function, all) in [
        ("DispatchFunction", true),
        ("HealthFunction", false),
        ("NotificationCreateFunction", false),
        ("AppointmentEventsFunction", false),
        ("ReminderSchedulerFunction", false),
        ("DlrCallbackFunction", false),
    ] {
        let env = env_of(function);
        for id in ProviderId::ALL {
            for name in id.env_names(all) {
                if !env.contains(&name) {
                    missing.push(format!("{function} lacks {name} ({})", id.name()));
                }
            }
        }
        for name in &orders {
            if !env.contains(name) {
                missing.push(format!("{function} lacks {name}"));
            }
        }
    }
    if !env_of("DispatchFunction").contains("DLR_CALLBACK_BASE_URL") {
        missing.push("DispatchFunction lacks DLR_CALLBACK_BASE_URL (receipt URLs)".into());
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
