use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use super::device_client::split_command;
use super::*;
use crate::plan::{Action, InstallFile, InstallSpec, RunOptions, Step};

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn only_step(doc: serde_json::Value) -> Step {
    let plan = parse(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
    assert_eq!(plan.steps.len(), 1, "{plan:?}");
    assert_eq!(plan.final_step, None);
    plan.steps.into_iter().next().unwrap()
}

fn rejected(doc: serde_json::Value) -> String {
    match parse(&doc) {
        Ok(plan) => panic!("{doc} parsed as {plan:?}"),
        Err(e) => e.0,
    }
}

fn handler(name: &str, args: &[&str], path: Option<&str>, options: RunOptions) -> Action {
    Action::RunHandler {
        handler: name.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        path: path.map(PathBuf::from),
        options,
    }
}

fn allowed() -> RunOptions {
    RunOptions { allow_stderr: true, ..RunOptions::default() }
}

// ---- the JS samples and jobs-agent.js ----

#[test]
fn tutorial_custom_job_is_a_handler_named_after_the_operation() {
    let plan = parse(&json!({"operation": "customJob", "otherInfo": "someValue"})).unwrap();
    assert_eq!(plan.operation, "customJob");
    assert_eq!(
        plan.steps,
        vec![Step {
            name: "customJob".into(),
            action: handler("customJob", &[""], None, allowed()),
            ignore_failure: false,
            timeout: None
        }]
    );
}

#[test]
fn any_other_operation_routes_to_its_handler() {
    let step = only_step(json!({"operation": "frobnicate"}));
    assert_eq!(step.action, handler("frobnicate", &[""], None, allowed()));
}

#[test]
fn operation_names_cannot_leave_the_handler_directory() {
    assert!(rejected(json!({"operation": "../bin/sh"})).contains(".."));
    assert!(rejected(json!({"operation": "/bin/sh"})).contains("absolute"));
    assert!(rejected(json!({"operation": ""})).contains("empty"));
    assert!(rejected(json!({"operation": 7})).contains("string"));
}

#[test]
fn install_with_checksum_launch_command_and_string_auto_start() {
    let step = only_step(json!({
        "operation": "install",
        "packageName": "uniquePackageName",
        "workingDirectory": "/opt/app",
        "launchCommand": "node app.js -THING_NAME $AWS_IOT_THING_NAME",
        "autoStart": "true",
        "files": [
            {"fileName": "app.js", "fileVersion": "1.0.2.10",
             "fileSource": {"url": "https://some-bucket.s3.amazonaws.com/app.js"},
             "checksum": {"inline": {"value": SHA.to_uppercase()}, "hashAlgorithm": "SHA256"}},
            {"fileName": "lib/util.js", "fileSource": {"url": "http://10.0.0.1:8080/util.js"}}
        ]
    }));
    assert_eq!(step.name, "install");
    assert_eq!(
        step.action,
        Action::Install(InstallSpec {
            package_name: "uniquePackageName".into(),
            files: vec![
                InstallFile {
                    file_name: "app.js".into(),
                    url: "https://some-bucket.s3.amazonaws.com/app.js".into(),
                    sha256: Some(SHA.into())
                },
                InstallFile {
                    file_name: "lib/util.js".into(),
                    url: "http://10.0.0.1:8080/util.js".into(),
                    sha256: None
                },
            ],
            working_directory: Some("/opt/app".into()),
            launch_command: Some("node app.js -THING_NAME $AWS_IOT_THING_NAME".into()),
            auto_start: true,
        })
    );
}

#[test]
fn install_auto_start_false_string_means_false_and_defaults() {
    let step = only_step(json!({
        "operation": "install", "packageName": "p", "autoStart": "false",
        "files": [{"fileName": "a", "fileSource": {"url": "https://h/a"},
                   "checksum": {"inline": {"value": SHA}, "hashAlgorithm": "sha256"}}]
    }));
    let Action::Install(spec) = step.action else { panic!() };
    assert!(!spec.auto_start);
    assert_eq!(spec.working_directory, None);
    assert_eq!(spec.launch_command, None);
    let step = only_step(json!({"operation": "install", "packageName": "p", "autoStart": true,
        "workingDirectory": "./sub", "files": [{"fileName": "a", "fileSource": {"url": "https://h/a"}}]}));
    let Action::Install(spec) = step.action else { panic!() };
    assert!(spec.auto_start);
    assert_eq!(spec.working_directory, Some("sub".into()));
}

#[test]
fn install_refuses_what_jobs_agent_js_lets_through() {
    let file = |name: &str| json!({"fileName": name, "fileSource": {"url": "https://h/x"}});
    let install = |files: serde_json::Value| json!({"operation": "install", "packageName": "p", "files": files});
    assert!(rejected(install(json!([file("../x")]))).contains(".."));
    assert!(rejected(install(json!([file("/etc/passwd")]))).contains("absolute"));
    assert!(rejected(install(json!([file("a"), file("./a")]))).contains("twice"));
    assert!(rejected(install(json!([]))).contains("empty"));
    assert!(rejected(install(json!("a"))).contains("array"));
    assert!(rejected(json!({"operation": "install", "packageName": "p"})).contains("files"));
    assert!(rejected(json!({"operation": "install", "files": [file("a")]})).contains("packageName"));
    let url = |u: serde_json::Value| install(json!([{"fileName": "a", "fileSource": {"url": u}}]));
    assert!(rejected(url(json!("file:///etc/shadow"))).contains("http"));
    assert!(rejected(url(json!("/tmp/local"))).contains("http"));
    assert!(rejected(url(json!({"${aws:iot:code-sign-signature:…}": 1}))).contains("string"));
    assert!(rejected(install(json!([{"fileName": "a"}]))).contains("fileSource"));
    let sum =
        |c: serde_json::Value| install(json!([{"fileName": "a", "fileSource": {"url": "https://h/a"}, "checksum": c}]));
    assert!(rejected(sum(json!({"inline": {"value": SHA}, "hashAlgorithm": "md5"}))).contains("SHA256"));
    assert!(rejected(sum(json!({"inline": {"value": "abc"}, "hashAlgorithm": "SHA256"}))).contains("64 hex"));
    assert!(rejected(sum(json!({"hashAlgorithm": "SHA256"}))).contains("inline"));
    assert!(rejected(sum(json!({"inline": {"value": SHA}}))).contains("hashAlgorithm"));
    assert!(rejected(json!({"operation": "install", "packageName": "p", "workingDirectory": "/opt/../etc",
        "files": [file("a")]}))
    .contains(".."));
    assert!(rejected(json!({"operation": "install", "packageName": "p", "autoStart": "yes",
        "files": [file("a")]}))
    .contains("autoStart"));
}

#[test]
fn package_operations() {
    for (op, expected) in [
        ("start", Action::StartPackage { package: "app".into() }),
        ("stop", Action::StopPackage { package: "app".into() }),
        ("restart", Action::RestartPackage { package: "app".into() }),
    ] {
        let step = only_step(json!({"operation": op, "packageName": "app"}));
        assert_eq!((step.name.as_str(), step.action), (op, expected));
        assert!(rejected(json!({"operation": op})).contains("packageName"));
        assert!(rejected(json!({"operation": op, "packageName": "../app"})).contains("invalid"));
    }
}

#[test]
fn reboot_shutdown_and_system_status() {
    assert_eq!(only_step(json!({"operation": "reboot"})).action, Action::Reboot { delay_minutes: 0 });
    assert_eq!(only_step(json!({"operation": "reboot", "delay": 2})).action, Action::Reboot { delay_minutes: 2 });
    assert_eq!(only_step(json!({"operation": "reboot", "delay": "3"})).action, Action::Reboot { delay_minutes: 3 });
    assert_eq!(only_step(json!({"operation": "shutdown", "delay": 1})).action, Action::Shutdown { delay_minutes: 1 });
    assert_eq!(only_step(json!({"operation": "systemStatus"})).action, Action::SystemStatus);
    assert!(rejected(json!({"operation": "reboot", "delay": -1})).contains("delay"));
    assert!(rejected(json!({"operation": "reboot", "delay": "soon"})).contains("delay"));
}

#[test]
fn timeout_extension_on_operation_documents() {
    let step = only_step(json!({"operation": "longJob", "timeoutSeconds": 90}));
    assert_eq!(step.timeout, Some(Duration::from_secs(90)));
    assert!(rejected(json!({"operation": "longJob", "timeoutSeconds": 0})).contains("positive"));
}

// ---- the Device Client's sample documents ----

#[test]
fn device_client_install_packages_sample() {
    let step = only_step(json!({
        "_comment": "This sample JSON file can be used for installing specific list of packages on device.",
        "version": "1.0",
        "steps": [{"action": {"name": "Install Packages", "type": "runHandler",
            "input": {"handler": "install-packages.sh", "args": ["lftp", "dos2unix"], "path": "default"},
            "runAsUser": "root"}}]
    }));
    assert_eq!(step.name, "Install Packages");
    assert_eq!(step.action, handler("install-packages.sh", &["root", "lftp", "dos2unix"], None, allowed()));
}

#[test]
fn device_client_reboot_sample_is_a_native_reboot() {
    let plan = parse(&json!({"version": "1.0", "steps": [{"action": {"name": "Reboot Device",
        "type": "runHandler", "input": {"handler": "reboot.sh"}, "runAsUser": "root"}}]}))
    .unwrap();
    assert_eq!(plan.operation, "Reboot Device");
    assert_eq!(plan.steps[0].action, Action::Reboot { delay_minutes: 0 });
}

#[test]
fn device_client_run_shell_command_sample() {
    let step = only_step(json!({"version": "1.0", "steps": [{"action": {"name": "Create New Directory",
        "type": "runCommand", "input": {"command": "mkdir,newDir"}, "runAsUser": "root"}}]}));
    assert_eq!(
        step.action,
        Action::RunCommand {
            argv: vec!["mkdir".into(), "newDir".into()],
            options: RunOptions { run_as_user: Some("root".into()), ..allowed() }
        }
    );
}

#[test]
fn device_client_echo_sample() {
    let step = only_step(json!({"version": "1.0", "steps": [{"action": {"name": "Echo Messages",
        "type": "runHandler", "input": {"handler": "echo", "args": ["Hello IoT World!"]}}}]}));
    assert_eq!(step.action, handler("echo", &["", "Hello IoT World!"], None, allowed()));
}

#[test]
fn device_client_old_schema_download_sample_is_a_native_download() {
    let step = only_step(json!({
        "_comment": "This sample JSON file can be used for downloading specific file from cloud storage.",
        "operation": "download-file.sh",
        "args": ["https://github.com/awslabs/aws-iot-device-client/archive/refs/tags/v1.3.tar.gz",
                 "/tmp/aws-iot-device-client.tar.gz"],
        "path": "default"
    }));
    assert_eq!(
        step.action,
        Action::Download {
            url: "https://github.com/awslabs/aws-iot-device-client/archive/refs/tags/v1.3.tar.gz".into(),
            path: "/tmp/aws-iot-device-client.tar.gz".into(),
            sha256: None
        }
    );
}

#[test]
fn device_client_old_schema_with_args_and_options() {
    let step = only_step(json!({"operation": "collect-logs.sh", "args": ["/var/log", 3],
        "path": "/usr/local/handlers", "allowStdErr": 0, "includeStdOut": "true"}));
    assert_eq!(
        step.action,
        handler(
            "collect-logs.sh",
            &["", "/var/log", "3"],
            Some("/usr/local/handlers"),
            RunOptions { allow_stderr: false, include_stdout: true, ..RunOptions::default() }
        )
    );
}

// ---- AWS managed templates, placeholders substituted ----

fn template(name: &str, input: serde_json::Value, run_as_user: &str) -> serde_json::Value {
    json!({"version": "1.0", "steps": [{"action": {"name": name, "type": "runHandler", "input": input,
        "runAsUser": run_as_user}}]})
}

#[test]
fn aws_reboot_template() {
    let step = only_step(template("Reboot", json!({"handler": "reboot.sh", "path": ""}), ""));
    assert_eq!(step.action, Action::Reboot { delay_minutes: 0 });
}

#[test]
fn aws_download_file_template() {
    let step = only_step(template(
        "Download-File",
        json!({"handler": "download-file.sh",
               "args": ["https://bucket.s3.amazonaws.com/fw.bin?X-Amz-Signature=abc", "/home/pi/fw.bin"],
               "path": "/home/pi/handlers"}),
        "pi",
    ));
    assert_eq!(
        step.action,
        Action::Download {
            url: "https://bucket.s3.amazonaws.com/fw.bin?X-Amz-Signature=abc".into(),
            path: "/home/pi/fw.bin".into(),
            sha256: None
        }
    );
    // a non-HTTP source stays with the handler script
    let step = only_step(template(
        "Download-File",
        json!({"handler": "download-file.sh", "args": ["ftp://h/f", "/tmp/f"], "path": "default"}),
        "",
    ));
    assert_eq!(step.action, handler("download-file.sh", &["", "ftp://h/f", "/tmp/f"], None, allowed()));
    let bad =
        template("Download-File", json!({"handler": "download-file.sh", "args": ["https://h/f", "/tmp/../etc/f"]}), "");
    assert!(rejected(bad).contains(".."));
}

#[test]
fn aws_application_templates_stay_handlers() {
    for (name, script, arg) in [
        ("Install-Application", "install-packages.sh", "lftp dos2unix"),
        ("Remove-Application", "remove-packages.sh", "lftp"),
        ("Start-Application", "start-services.sh", "nginx"),
        ("Stop-Application", "stop-services.sh", "nginx"),
        ("Restart-Application", "restart-services.sh", "nginx cron"),
    ] {
        let step = only_step(template(name, json!({"handler": script, "args": [arg], "path": "default"}), "root"));
        assert_eq!(step.name, name);
        assert_eq!(step.action, handler(script, &["root", arg], None, allowed()));
    }
}

#[test]
fn aws_run_command_template() {
    let doc = json!({"version": "1.0", "steps": [{"action": {"name": "Run-Command", "type": "runCommand",
        "input": {"command": "echo,Hello\\, world,,x"}, "runAsUser": ""}}]});
    let step = only_step(doc);
    assert_eq!(
        step.action,
        Action::RunCommand {
            argv: vec!["echo".into(), "Hello, world".into(), "".into(), "x".into()],
            options: allowed()
        }
    );
}

// ---- schema 1.0 options ----

#[test]
fn include_stdout_as_string_or_boolean_at_every_level() {
    let action = |extra: serde_json::Value| {
        let mut a = json!({"name": "s", "type": "runCommand", "input": {"command": "true"}});
        a.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        a
    };
    let include = |doc: serde_json::Value| match only_step(doc).action {
        Action::RunCommand { options, .. } => options.include_stdout,
        other => panic!("{other:?}"),
    };
    assert!(include(json!({"version": "1.0", "includeStdOut": "true", "steps": [{"action": action(json!({}))}]})));
    assert!(include(json!({"version": "1.0", "includeStdOut": true, "steps": [{"action": action(json!({}))}]})));
    assert!(!include(json!({"version": "1.0", "includeStdOut": "false", "steps": [{"action": action(json!({}))}]})));
    assert!(include(json!({"version": "1.0", "steps": [{"action": action(json!({"includeStdOut": true}))}]})));
    assert!(include(json!({"version": "1.0", "steps": [{"includeStdOut": "true", "action": action(json!({}))}]})));
    assert!(!include(json!({"version": "1.0", "includeStdOut": true,
        "steps": [{"action": action(json!({"includeStdOut": "false"}))}]})));
    assert!(!include(json!({"version": "1.0", "steps": [{"action": action(json!({}))}]})));
}

#[test]
fn allow_stderr_and_ignore_step_failure() {
    let step = |extra: serde_json::Value| {
        let mut a = json!({"name": "s", "type": "runCommand", "input": {"command": "true"}});
        a.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        only_step(json!({"version": "1.0", "steps": [{"action": a}]}))
    };
    let allow = |extra| match step(extra).action {
        Action::RunCommand { options, .. } => options.allow_stderr,
        other => panic!("{other:?}"),
    };
    assert!(allow(json!({})));
    assert!(allow(json!({"allowStdErr": 2})));
    assert!(!allow(json!({"allowStdErr": 0})));
    assert!(!allow(json!({"allowStdErr": false})));
    assert!(allow(json!({"allowStdErr": "true"})));
    assert!(step(json!({"ignoreStepFailure": "true"})).ignore_failure);
    assert!(step(json!({"ignoreStepFailure": true})).ignore_failure);
    assert!(!step(json!({"ignoreStepFailure": "false"})).ignore_failure);
    assert_eq!(step(json!({"timeoutSeconds": "30"})).timeout, Some(Duration::from_secs(30)));
}

#[test]
fn steps_and_final_step() {
    let plan = parse(&json!({
        "version": "1.0",
        "conditions": [{"key": "deviceType", "value": ["pi"], "type": "stringEqual"}],
        "steps": [
            {"action": {"name": "Download", "type": "runHandler",
                "input": {"handler": "download-file.sh", "args": ["https://h/a.bin", "a.bin"]}}},
            {"action": {"name": "Apply", "type": "runHandler", "input": {"handler": "apply.sh", "path": "sub/dir"},
                "ignoreStepFailure": "true"}}
        ],
        "finalStep": {"action": {"name": "Health-Check", "type": "runHandler", "input": {"handler": "health-check.sh"}}}
    }))
    .unwrap();
    assert_eq!(plan.operation, "Download, Apply");
    assert_eq!(
        plan.steps[0].action,
        Action::Download { url: "https://h/a.bin".into(), path: "a.bin".into(), sha256: None }
    );
    assert_eq!(plan.steps[1].action, handler("apply.sh", &[""], Some("sub/dir"), allowed()));
    assert!(plan.steps[1].ignore_failure);
    let final_step = plan.final_step.unwrap();
    assert_eq!(final_step.name, "Health-Check");
    assert_eq!(final_step.action, handler("health-check.sh", &[""], None, allowed()));
}

#[test]
fn malformed_device_client_documents() {
    let one = |action: serde_json::Value| json!({"version": "1.0", "steps": [{"action": action}]});
    assert!(rejected(json!({"version": "2.0", "steps": []})).contains("unsupported"));
    assert!(rejected(json!({"version": 1, "steps": []})).contains("string"));
    assert!(rejected(json!({"version": "1.0"})).contains("steps"));
    assert!(rejected(json!({"version": "1.0", "steps": []})).contains("empty"));
    assert!(rejected(json!({"version": "1.0", "steps": {}})).contains("array"));
    assert!(rejected(json!({"version": "1.0", "steps": [{"name": "x"}]})).contains("steps[0].action"));
    assert!(rejected(one(json!({"type": "runCommand", "input": {"command": "true"}}))).contains("name"));
    assert!(rejected(one(json!({"name": "x", "input": {"command": "true"}}))).contains("type"));
    assert!(rejected(one(json!({"name": "x", "type": "runScript", "input": {}}))).contains("runScript"));
    assert!(rejected(one(json!({"name": "x", "type": "runCommand"}))).contains("input"));
    assert!(rejected(one(json!({"name": "x", "type": "runCommand", "input": {"command": ""}}))).contains("command"));
    assert!(rejected(one(json!({"name": "x", "type": "runCommand", "input": {"command": "rm -rf,/"}})))
        .contains("whitespace"));
    assert!(rejected(one(json!({"name": "x", "type": "runHandler", "input": {}}))).contains("handler"));
    assert!(
        rejected(one(json!({"name": "x", "type": "runHandler", "input": {"handler": "../../bin/sh"}}))).contains("..")
    );
    assert!(rejected(one(json!({"name": "x", "type": "runHandler", "input": {"handler": "h", "path": "../x"}})))
        .contains(".."));
    assert!(rejected(one(json!({"name": "x", "type": "runHandler", "input": {"handler": "h", "args": [{}]}})))
        .contains("args[0]"));
    assert!(rejected(one(json!({"name": "x", "type": "runCommand", "input": {"command": "true"},
        "ignoreStepFailure": "maybe"})))
    .contains("ignoreStepFailure"));
    let bad_condition = json!({"version": "1.0", "conditions": [{"key": "k", "value": []}],
        "steps": [{"action": {"name": "x", "type": "runCommand", "input": {"command": "true"}}}]});
    assert!(rejected(bad_condition).contains("conditions[0].value"));
    let bad_final = json!({"version": "1.0", "steps": [{"action": {"name": "x", "type": "runCommand",
        "input": {"command": "true"}}}], "finalStep": {"action": {"name": "y"}}});
    assert!(rejected(bad_final).contains("finalStep.action.type"));
}

#[test]
fn unrecognized_documents() {
    assert!(rejected(json!({"foo": "bar"})).contains("neither"));
    assert!(rejected(json!(["operation", "install"])).contains("object"));
    assert!(rejected(json!("customJob")).contains("object"));
    assert!(rejected(json!({"afr_ota": {"files": []}})).contains("neither"));
}

#[test]
fn command_splitting() {
    let split = |s: &str| split_command(s).unwrap();
    assert_eq!(split("echo"), ["echo"]);
    assert_eq!(split("echo,a\\,b,c"), ["echo", "a,b", "c"]);
    assert_eq!(split("echo,a,"), ["echo", "a"]);
    assert_eq!(split("printf,%s\\n,x y"), ["printf", "%s\\n", "x y"]);
    assert!(split_command("").is_err());
    assert!(split_command(",x").is_err());
}

#[test]
fn plans_survive_a_json_round_trip() {
    let plan = parse(&json!({"version": "1.0", "steps": [
        {"action": {"name": "a", "type": "runCommand", "input": {"command": "true"}, "runAsUser": "pi",
            "timeoutSeconds": 5}},
        {"action": {"name": "b", "type": "runHandler", "input": {"handler": "reboot.sh"}}}]}))
    .unwrap();
    let text = serde_json::to_string(&plan).unwrap();
    assert_eq!(serde_json::from_str::<crate::plan::Plan>(&text).unwrap(), plan);
}

#[test]
fn safe_names() {
    assert_eq!(safe_relative_path("./a/b").unwrap(), PathBuf::from("a/b"));
    assert!(safe_relative_path("a/../../b").is_err());
    assert!(safe_relative_path(".").is_err());
    assert!(safe_relative_path("a\0b").is_err());
    assert!(valid_package_name("my-app_1.2"));
    assert!(!valid_package_name(".."));
    assert!(!valid_package_name("a/b"));
    assert!(!valid_package_name(""));
}

#[test]
fn errors_name_the_field_path() {
    let doc = json!({"version": "1.0", "steps": [
        {"action": {"name": "a", "type": "runCommand", "input": {"command": "true"}}},
        {"action": {"name": "b", "type": "runHandler", "input": {"handler": 5}}}]});
    assert_eq!(
        rejected(doc),
        "`steps[1].action.input.handler`: invalid type: integer `5`, expected a non-empty string"
    );
    let doc = json!({"version": "1.0", "steps": [{"action": {"name": "b", "type": "runHandler", "input": {}}}]});
    assert_eq!(rejected(doc), "required field `steps[0].action.input.handler` is missing");
    let doc = json!({"operation": "install", "packageName": "p", "files": [{"fileName": "a"}]});
    assert_eq!(rejected(doc), "required field `files[0].fileSource` is missing");
    assert_eq!(rejected(json!({"operation": "reboot", "delay": true})).split(':').next(), Some("`delay`"));
    let doc = json!({"version": "1.0", "steps": [{"action": "run"}]});
    assert_eq!(rejected(doc), "`steps[0].action`: invalid type: string \"run\", expected an object");
}

#[test]
fn null_is_absent_and_other_members_are_ignored() {
    let step = only_step(json!({"version": "1.0", "includeStdOut": null, "conditions": null, "finalStep": null,
        "extra": {"any": ["thing"]},
        "steps": [{"note": 1, "action": {"name": "s", "type": "runHandler", "comment": "x",
            "input": {"handler": "h", "args": null, "path": null, "extra": 1},
            "runAsUser": null, "allowStdErr": null, "ignoreStepFailure": null, "timeoutSeconds": null}}]}));
    assert_eq!(step.action, handler("h", &[""], None, allowed()));
    // a handler's document keeps its own members, whatever `install` would make of them
    let step = only_step(json!({"operation": "deploy", "files": ["a", "b"], "packageName": 5, "delay": "later"}));
    assert_eq!(step.action, handler("deploy", &[""], None, allowed()));
    let step = only_step(json!({"operation": "reboot", "delay": null, "packageName": {}}));
    assert_eq!(step.action, Action::Reboot { delay_minutes: 0 });
}
