//! `bulwark create-superadmin`, `import-users` and `tenants delete`: accounts from the
//! operator's terminal.

use std::process::ExitCode;

use bulwark::config::ConfigInput;

/// The password from the terminal (asked twice), or one line of standard input.
fn read_password() -> std::io::Result<bulwark::crypto::Secret<String>> {
    use std::io::{BufRead as _, IsTerminal as _};
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat it: ")?;
        if first != second {
            return Err(std::io::Error::other("the passwords differ"));
        }
        Ok(bulwark::crypto::Secret::new(first))
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(bulwark::crypto::Secret::new(line.trim_end_matches(['\n', '\r']).to_owned()))
    }
}

pub async fn create_superadmin(input: &ConfigInput, email: &str, name: &str) -> ExitCode {
    let password = match read_password() {
        Ok(password) => password,
        Err(err) => {
            eprintln!("error: reading the password: {err}");
            return ExitCode::FAILURE;
        }
    };
    let Some(state) = crate::open_state(input).await else { return ExitCode::FAILURE };
    match bulwark::identity::account::create_superadmin(&state, email, name, &password).await {
        Ok(id) => {
            println!("super-admin {id} created");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {}", crate::describe(&err));
            ExitCode::FAILURE
        }
    }
}

pub async fn import_users(
    input: &ConfigInput,
    tenant: bulwark::ids::TenantId,
    file: &std::path::Path,
) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("error: {}: {err}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let mut users = vec![];
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(user) => users.push(user),
            Err(_) => {
                eprintln!("error: line {} is not a user record", n + 1);
                return ExitCode::FAILURE;
            }
        }
    }
    let Some(state) = crate::open_state(input).await else { return ExitCode::FAILURE };
    match bulwark::identity::account::import_users(&state, tenant, users).await {
        Ok(count) => {
            println!("{count} users imported");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {}", crate::describe(&err));
            ExitCode::FAILURE
        }
    }
}

pub async fn delete_tenant(input: &ConfigInput, tenant: bulwark::ids::TenantId) -> ExitCode {
    let Some(state) = crate::open_state(input).await else { return ExitCode::FAILURE };
    match bulwark::maintenance::tenant_deletion::delete_tenant(&state, tenant).await {
        Ok(records) => {
            println!("tenant {tenant} deleted: keys destroyed, {records} record(s) deleted");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {}", crate::describe(&err));
            ExitCode::FAILURE
        }
    }
}
