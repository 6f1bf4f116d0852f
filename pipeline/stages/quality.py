"""Is a text a wall in front of an article (consent, bot check, paywall, registration)?

Pure stage. Walls are recognised by their phrases, kept here as data per kind and language
(en, fr, de, es, pl, plus a few pt/it/nl). No library ships such a list, so it is written by
hand from the wording of public sites' walls.

The decision is about domination, not mention: a text is a wall when the sentences carrying
wall phrases hold at least WALL_SHARE of its letters (or PAYWALL_SHARE of a short paywalled
teaser) and the text is short. A real article that mentions cookies or asks readers to
subscribe once is far below both.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

__all__ = ["WALL_KINDS", "is_not_an_article", "wall_kind"]

# Texts longer than this are articles whatever they say: walls are a few hundred words at most.
MAX_WALL_WORDS = 600
# Share of letters in wall sentences from which a text is a wall.
WALL_SHARE = 0.5
# A paywall or registration wall often follows a teaser paragraph: a lower share suffices when
# the whole text is short.
PAYWALL_SHARE = 0.25
PAYWALL_MAX_WORDS = 300

_PATTERNS: Mapping[str, tuple[str, ...]] = {
    "consent": (
        # en
        (
            r"\b(?:we|this (?:site|website)|our partners)\b.{0,60}\b(?:use|uses|store|access)\b.{0,40}"
            r"\bcookies?\b"
        ),
        r"\bwe and our (?:\d+ )?(?:partners|vendors)\b",
        r"\b(?:accept|reject|decline|refuse) (?:all|cookies|all cookies)\b",
        r"\bmanage (?:your )?(?:preferences|choices|options|settings|cookies|consent)\b",
        r"\b(?:cookie|privacy) (?:policy|settings|preferences|notice)\b",
        r"\byour (?:privacy|consent|choices)\b",
        r"\b(?:personal data|legitimate interest|precise geolocation data)\b",
        r"\bwithdraw your consent\b",
        # fr
        r"\b(?:cookies?|traceurs)\b.{0,80}\b(?:utilis|dépos|accept|refus|paramétr)",
        r"\bnos partenaires\b",
        r"\b(?:tout )?(?:accepter|refuser|continuer sans accepter|paramétrer)\b",
        r"\b(?:données personnelles|votre consentement|intérêt légitime|vie privée)\b",
        # de
        r"\bcookies?\b.{0,80}\b(?:verwend|einsetz|akzeptier|zustimm|ablehn)",
        (
            r"\b(?:alle akzeptieren|alle ablehnen|zustimmen|zustimmung|einstellungen verwalten|"
            r"einwilligung)\b"
        ),
        (
            r"\b(?:personenbezogene[nr]? daten|datenschutz(?:erklärung|einstellungen)?|"
            r"berechtigte[ns]? interesse)\b"
        ),
        # es
        r"\bcookies?\b.{0,80}\b(?:utiliza|usamos|acept|rechaz|configur)",
        r"\b(?:aceptar todo|rechazar todo|aceptar y cerrar|configurar cookies)\b",
        (
            r"\b(?:datos personales|su consentimiento|tu consentimiento|interés legítimo|"
            r"política de (?:cookies|privacidad))\b"
        ),
        # pl
        r"\b(?:pliki cookies?|ciasteczka|plików cookies?)\b",
        (
            r"\b(?:akceptuję|zaakceptuj wszystkie|odrzuć wszystkie|ustawienia prywatności|"
            r"zarządzaj (?:zgodami|ustawieniami))\b"
        ),
        (
            r"\b(?:dane osobowe|danych osobowych|twoją zgodę|prawnie uzasadniony interes|"
            r"polityk[aię] prywatności)\b"
        ),
        # pt / it / nl
        (
            r"\b(?:aceitar todos|rejeitar todos|accetta tutti|rifiuta tutti|alles accepteren|"
            r"alles weigeren)\b"
        ),
    ),
    "bot_check": (
        # en
        r"\b(?:verify|confirm|prove) (?:that )?you(?:'re| are) (?:a )?(?:human|not a robot)\b",
        r"\bchecking (?:if the site connection is secure|your browser)\b",
        r"\b(?:captcha|recaptcha|hcaptcha|cloudflare|ray id|ddos protection)\b",
        (
            r"\b(?:access denied|access to this page has been denied|you have been blocked|"
            r"unusual traffic|are you a robot|i am not a robot|i'm not a robot)\b"
        ),
        r"\b(?:enable|turn on) (?:javascript|cookies)\b",
        r"\byou don't have permission to access\b",
        # fr
        (
            r"\b(?:vérifi\w+|confirm\w+|prouv\w+) que vous (?:êtes|n'êtes pas) (?:un )?"
            r"(?:humain|robot)"
        ),
        (
            r"\b(?:vérification de (?:votre navigateur|sécurité)|accès refusé|"
            r"activez (?:le )?javascript|je ne suis pas un robot)\b"
        ),
        # de
        (
            r"\b(?:kein roboter|sie sind ein mensch|überprüfung ihres browsers|zugriff verweigert|"
            r"javascript aktivieren|aktivieren sie javascript|ich bin kein roboter)\b"
        ),
        # es
        (
            r"\b(?:no eres un robot|no soy un robot|eres humano|acceso denegado|"
            r"verificando (?:tu|su) navegador|habilita javascript|activa javascript)\b"
        ),
        # pl
        (
            r"\b(?:nie jesteś robotem|nie jestem robotem|jesteś człowiekiem|odmowa dostępu|"
            r"dostęp zabroniony|weryfikacja przeglądarki|włącz javascript)\b"
        ),
    ),
    "paywall": (
        # en
        r"\b(?:subscribe|subscription|sign up) (?:now |today )?to (?:continue|keep) reading\b",
        r"\b(?:for|to) (?:paying )?subscribers only\b",
        (
            r"\bthis (?:article|story|content) is (?:only )?(?:available|reserved) (?:to|for) "
            r"(?:subscribers|members)\b"
        ),
        (
            r"\b(?:already a subscriber|already subscribed|become a subscriber|subscribe now|"
            r"start your (?:free )?trial|unlimited (?:digital )?access|you've reached your "
            r"(?:free )?(?:article )?limit|free articles? (?:left|remaining))\b"
        ),
        # fr
        (
            r"\b(?:réservée?s? aux abonnés|déjà abonnée?|abonnez-vous|je m'abonne|"
            r"offre d'abonnement|lire la suite pour \d|sans engagement|accès illimité)\b"
        ),
        r"\bpour (?:lire|continuer à lire|poursuivre votre lecture)\b.{0,40}\babonn",
        # de
        (
            r"\b(?:nur für abonnenten|jetzt abonnieren|bereits abonnent|abo abschließen|"
            r"weiterlesen mit|plus-artikel|exklusiv für abonnenten|jederzeit kündbar|"
            r"digitalabo|unbegrenzten zugang)\b"
        ),
        # es
        (
            r"\b(?:exclusivo para suscriptores|solo para suscriptores|ya eres suscriptor|"
            r"suscríbete|suscribirse|continuar leyendo|acceso ilimitado|contenido exclusivo)\b"
        ),
        # pl
        (
            r"\b(?:tylko dla (?:prenumeratorów|subskrybentów)|wykup (?:dostęp|subskrypcję|"
            r"prenumeratę)|masz już (?:prenumeratę|subskrypcję|konto)|dostęp premium|"
            r"czytaj dalej z|kup subskrypcję|subskrypcj[aęi] cyfrow)\b"
        ),
        # pt / it / nl
        (
            r"\b(?:exclusivo para assinantes|assine agora|riservato agli abbonati|abbonati ora|"
            r"alleen voor abonnees|word abonnee)\b"
        ),
    ),
    "registration": (
        # en
        (
            r"\b(?:register|sign up|create (?:a |an |your )?(?:free )?account|log ?in|sign in) "
            r"(?:for free |now )?to (?:continue|read|keep reading|access|view)\b"
        ),
        (
            r"\b(?:already have an account|don't have an account|forgot your password|"
            r"registration is free|free registration)\b"
        ),
        # fr
        (
            r"\b(?:inscrivez-vous|connectez-vous|créez (?:votre|un) compte|inscription gratuite|"
            r"vous avez déjà un compte|mot de passe oublié|identifiez-vous)\b"
        ),
        # de
        (
            r"\b(?:jetzt registrieren|kostenlos registrieren|melden sie sich an|anmelden|"
            r"konto erstellen|passwort vergessen|bereits registriert)\b"
        ),
        # es
        (
            r"\b(?:regístrate|inicia sesión|iniciar sesión|crea (?:tu|una) cuenta|"
            r"registro gratuito|olvidaste tu contraseña)\b"
        ),
        # pl
        (
            r"\b(?:zarejestruj się|zaloguj się|załóż (?:darmowe )?konto|nie pamiętasz hasła|"
            r"rejestracja jest bezpłatna)\b"
        ),
    ),
}
WALL_KINDS: tuple[str, ...] = tuple(_PATTERNS)
_COMPILED: Mapping[str, re.Pattern[str]] = {
    kind: re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    for kind, patterns in _PATTERNS.items()
}
# A sentence ends at . ! ? … before a space, or at the end of a line (not inside "www.x.com").
_SENTENCES = re.compile(r".+?(?:[.!?…](?=\s)|$)", re.MULTILINE)
_LETTER = re.compile(r"[^\W\d_]")
# A newsletter prompt ("abonnez-vous à notre newsletter") is chrome, not a wall.
_NOT_A_WALL = re.compile(r"newsletter|boletín|biuletyn|nieuwsbrief|podcast", re.IGNORECASE)


def wall_kind(text: str) -> str | None:
    """The kind of wall ("consent", "bot_check", "paywall", "registration") the text is, if any."""
    words = len(text.split())
    if not words or words > MAX_WALL_WORDS:
        return None
    total = len(_LETTER.findall(text))
    if not total:
        return None
    letters: Counter[str] = Counter()
    for sentence in _SENTENCES.finditer(text):
        if _NOT_A_WALL.search(sentence.group()):
            continue
        for kind, pattern in _COMPILED.items():
            if pattern.search(sentence.group()):
                letters[kind] += len(_LETTER.findall(sentence.group()))
                break
    if not letters:
        return None
    kind, _ = letters.most_common(1)[0]
    share = sum(letters.values()) / total
    if share >= WALL_SHARE:
        return kind
    gated = letters["paywall"] + letters["registration"]
    if words <= PAYWALL_MAX_WORDS and gated >= PAYWALL_SHARE * total:
        return "paywall" if letters["paywall"] >= letters["registration"] else "registration"
    return None


def is_not_an_article(text: str) -> bool:
    """True for consent walls, bot checks, paywalls and registration walls."""
    return wall_kind(text) is not None
