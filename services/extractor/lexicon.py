"""Word lists behind concept typing (see :mod:`typing_rules`), kept apart from the rules.

Lists are lower case. Role and practice words cover English, French, German,
Spanish, Portuguese and Russian; entries are head words, matched against the
head of a phrase (its last word in English/German/Russian, its first word in
the Romance languages: "chef de projet", "revisión de código").
"""

from __future__ import annotations

__all__ = [
    "KNOWN_STANDARDS",
    "KNOWN_TOOLS",
    "ORGANISATIONS",
    "ORG_SUFFIXES",
    "PRACTICE_EXCEPTIONS",
    "PRACTICE_PHRASES",
    "PRACTICE_SUFFIXES",
    "ROLE_HEADS_FIRST",
    "PRACTICE_SUFFIXES_CJK",
    "ROLE_HEADS_LAST",
    "ROLE_STEMS",
    "ROLE_SUFFIXES_CJK",
    "STANDARD_BODIES",
    "STANDARD_WORDS",
    "TOOL_MANAGER_PREFIXES",
    "TOOL_SUFFIXES",
    "VENDORS",
    "word_set",
]


def word_set(text: str, sep: str | None = None) -> frozenset[str]:
    """The entries of a word list written as one string (split on `sep`, default whitespace).

    With whitespace separation, "_" joins the words of an entry: "power_bi" is "power bi".
    """
    if sep is not None:
        return frozenset(e.strip() for e in text.split(sep) if e.strip())
    return frozenset(w.replace("_", " ") for w in text.split())


# Norms, protocols, formats, regulations and the bodies that publish them.
KNOWN_STANDARDS = word_set(
    "http https http/2 http/3 tls ssl tcp udp ip ipv4 ipv6 tcp/ip dns dnssec smtp imap pop3 ftp sftp ftps ssh "
    "oauth oauth2 openid saml jwt jws jwe oidc kerberos ldap radius snmp mqtt amqp grpc rest soap websocket "
    "gdpr rgpd dsgvo lgpd hipaa sox ccpa nis2 dora pci pci-dss iso iec iso/iec nist owasp cwe cve cvss "
    "asvs samm wcag html html5 xml json yaml csv utf-8 unicode ascii x.509 pki aes des 3des rsa ecdsa sha-1 "
    "sha-256 sha-512 md5 hmac wpa2 wpa3 802.1x bluetooth wi-fi usb pdf/a cobit itil togaf prince2 pmbok "
    "bpmn uml sql92 ecmascript posix ieee ietf w3c ansi etsi enisa iso27001 soc1 soc2 fido fido2 webauthn "
    "saml2 s/mime pgp openpgp ipsec vpn"
)
STANDARD_BODIES = word_set("iso iec ieee ietf w3c ansi etsi nist owasp cen cenelec din afnor bsi itu ecma oasis")
# Words that make a phrase a norm, in the languages we type.
STANDARD_WORDS = word_set(
    "standard standards norm norms regulation directive protocol specification rfc act "
    "norme normes règlement directive protocole spécification référentiel "
    "norma normas reglamento directiva protocolo especificación especificação regulamento "
    "richtlinie verordnung protokoll spezifikation стандарт протокол регламент директива"
)

# Software, languages, platforms.
KNOWN_TOOLS = word_set(
    "python java javascript typescript c c++ c# f# go golang rust kotlin swift php ruby scala perl r matlab "
    "bash powershell sql t-sql pl/sql nosql postgresql postgres mysql mariadb sqlite oracle mongodb redis "
    "cassandra elasticsearch kafka rabbitmq docker kubernetes k8s helm terraform ansible puppet chef jenkins "
    "git github gitlab bitbucket jira confluence excel powerpoint word outlook teams sharepoint onedrive "
    "power_bi visual_studio vs_code burp_suite google_cloud tableau looker spark hadoop airflow dbt snowflake databricks bigquery tensorflow pytorch keras "
    "scikit-learn pandas numpy react angular vue svelte django flask fastapi spring .net asp.net node.js "
    "express linux ubuntu debian windows macos ios android azure aws gcp openshift wireshark nmap metasploit "
    "burp sonarqube selenium junit pytest postman vscode eclipse intellij xcode splunk grafana prometheus "
    "nginx apache tomcat iis vault okta keycloak zap snyk dependabot copilot chatgpt llama"
)
TOOL_SUFFIXES = word_set(
    "server studio sdk api apis framework db database suite ide cli engine library toolkit compiler editor "
    "plugin extension runtime client browser console shell os cloud platform app"
)
# "Package Manager" is a tool, "Project Manager" a role.
TOOL_MANAGER_PREFIXES = word_set("package task secret secrets password key file window device certificate credential")
VENDORS = word_set(
    "microsoft google amazon aws azure apple ibm oracle sap adobe atlassian cisco salesforce redhat "
    "jetbrains github gitlab hashicorp elastic mozilla meta nvidia intel vmware"
)

# Organisations.
ORGANISATIONS = word_set(
    "microsoft google amazon apple ibm oracle sap adobe atlassian cisco salesforce meta nvidia intel vmware "
    "mozilla anssi cnil enisa cisa nsa fbi europol interpol un unesco oecd ocde nato otan eu"
)
ORG_SUFFIXES = word_set(
    "inc inc. ltd ltd. llc gmbh ag sa s.a. sas sarl plc corp corp. corporation company foundation "
    "university université universität universidad universidade institute institut agency agence "
    "association bank banque group groupe ministry ministère ministerium commission council"
)

# Roles: people by function.
ROLE_HEADS_LAST = word_set(
    "developer developers programmer programmers engineer engineers architect architects attacker attackers "
    "hacker hackers adversary adversaries intruder intruders administrator administrators admin admins "
    "manager managers owner owners analyst analysts user users customer customers stakeholder stakeholders "
    "tester testers designer designers consultant consultants officer officers lead leads director "
    "directors executive executives sponsor sponsors auditor auditors operator operators maintainer "
    "maintainers contributor contributors reviewer reviewers scientist scientists researcher researchers "
    "student students teacher teachers trainer trainers master masters champion champions expert experts "
    "specialist specialists coordinator coordinators supervisor supervisors employee employees staff "
    "member members victim victims insider insiders actor actors team teams leader leaders ciso cto cio ceo "
    "dpo pentester pentesters devops-engineer sre sres "
    "entwickler programmierer ingenieur architekt angreifer administrator leiter verantwortlicher "
    "eigentümer analyst benutzer nutzer anwender kunde kunden tester berater prüfer mitarbeiter"
)
ROLE_HEADS_FIRST = word_set(
    "développeur développeurs développeuse développeuses programmeur programmeurs ingénieur ingénieurs "
    "architecte architectes attaquant attaquants pirate pirates administrateur administrateurs gestionnaire "
    "gestionnaires chef chefs responsable responsables propriétaire propriétaires analyste analystes "
    "utilisateur utilisateurs utilisatrice utilisatrices client clients testeur testeurs auditeur auditeurs "
    "consultant consultants directeur directeurs directrice employé employés "
    "desarrollador desarrolladores desarrolladora programador programadores ingeniero ingenieros arquitecto "
    "arquitectos atacante atacantes administrador administradores gerente gerentes jefe jefes propietario "
    "dueño analista analistas usuario usuarios cliente clientes probador auditor auditores consultor "
    "consultores director directores desenvolvedor desenvolvedores engenheiro engenheiros arquiteto "
    "gestor gestores responsável proprietário dono usuário usuários utilizador utilizadores testador diretor"
)
# Russian inflects: a word starting with one of these stems is the role.
ROLE_STEMS = (
    "разработчик", "программист", "инженер", "архитектор", "злоумышленник", "хакер", "администратор",
    "менеджер", "руководител", "владел", "аналитик", "пользовател", "клиент", "тестировщик", "аудитор",
    "консультант", "директор", "сотрудник",
)

# Chinese, Japanese and Korean words end in their head: 開発者 (developer), 项目经理 (project manager).
ROLE_SUFFIXES_CJK = (
    "者", "担当", "マネージャー", "エンジニア", "オーナー", "人员", "经理", "工程师", "员", "师", "자", "매니저",
    "엔지니어", "담당",
)
PRACTICE_SUFFIXES_CJK = (
    "テスト", "レビュー", "化", "検証", "監査", "测试", "审查", "加密", "验证", "审计", "테스트", "리뷰", "암호화",
    "검증", "감사",
)

# Practices: activities and methods.
PRACTICE_PHRASES = word_set(
    "agile scrum kanban devops devsecops mlops finops gitops ci/cd tdd bdd ddd pentest pentesting "
    "refactoring testing encryption hashing logging monitoring backup backups patching auditing "
    "sanitisation sanitization validation authentication authorization authorisation review audit "
    "mfa 2fa sso least-privilege zero-trust practice practices method methods methodology methodologies "
    "technique techniques process processes approach workflow "
    "pratique pratiques méthode méthodes méthodologie revue processus démarche "
    "praxis methode methoden prozess verfahren "
    "práctica prácticas método métodos metodología revisión proceso pruebas prueba "
    "prática práticas metodologia revisão processo testes teste "
    "практика практики метод методология процесс криптография "
    "cryptography criptografia criptografía cifragem kryptographie cryptographie"
)
# Suffixes of activity nouns by language; English ones apply everywhere (jargon travels).
PRACTICE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "en": ("ing", "tion", "sion", "ization", "isation", "ment", "ance", "ysis", "review", "reviews", "test",
           "tests"),
    "fr": ("tion", "sion", "isation", "age", "ment", "ance"),
    "de": ("ung", "ierung", "tion", "prüfung", "analyse"),
    "es": ("ción", "sión", "miento", "aje", "ado"),
    "pt": ("ção", "são", "mento", "agem"),
    "it": ("zione", "mento", "aggio"),
    "ru": ("ние", "ция", "ирование", "изация"),
}
# Nouns with those suffixes that are things, not activities.
PRACTICE_EXCEPTIONS = word_set(
    "string strings thing things nothing something everything morning evening building buildings ceiling "
    "meeting meetings wedding ring king spring swing sibling during pudding wing bring sting ping "
    "application applications information function functions question questions section sections "
    "solution solutions organization organizations organisation organisations location locations nation "
    "nations station stations session sessions version versions extension extensions collection collections "
    "connection connections exception exceptions transaction transactions condition conditions definition "
    "definitions option options position positions relation relations instruction instructions dimension "
    "dimensions permission permissions emotion motion notion portion fraction caption mission vision "
    "television division population foundation institution tradition situation edition expression "
    "impression profession commission decision direction election attention intention mention ration "
    "conclusion confusion fusion tension pension occasion illusion union region regions "
    "scripting phishing spoofing sniffing tampering hijacking spamming poisoning flooding jamming skimming "
    "injection injections exfiltration escalation infection corruption disruption vulnerability "
    "document documents environment environments element elements moment moments payment payments "
    "department departments statement statements equipment argument arguments comment comments "
    "instrument segment segments fragment requirement requirements agreement investment "
    "page pages message messages image images language languages storage package packages percentage "
    "stage stages usage village passage voltage advantage average damage heritage "
    "performance distance instance instances balance finance insurance importance substance "
    "fonction fonctions solution organisation environnement élément éléments document paiement "
    "lösung lösungen anwendung anwendungen umgebung bedingung bedingungen verbindung verbindungen "
    "meinung rechnung richtung zeitung wohnung ordnung erfahrung "
    "aplicación aplicaciones información función funciones sección solución organización versión "
    "documento documentos elemento elementos momento conocimiento estado mercado resultado cuidado "
    "aplicação informação função seção secção solução organização versão "
    "приложение значение решение информация функция организация версия станция"
)
