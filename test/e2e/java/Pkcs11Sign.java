// Signs with the card through Java's own SunPKCS11 provider: java Pkcs11Sign.java CONFIG PIN ALIAS INPUT OUTPUT.
// Prints the aliases with their entry type first, then writes the SHA256withRSA signature of INPUT.
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;
import java.util.Collections;

public class Pkcs11Sign {
  public static void main(String[] args) throws Exception {
    Provider provider = Security.getProvider("SunPKCS11").configure(args[0]);
    KeyStore store = KeyStore.getInstance("PKCS11", provider);
    store.load(null, args[1].toCharArray());
    for (String alias : Collections.list(store.aliases())) {
      System.out.println(alias + (store.isKeyEntry(alias) ? " PrivateKeyEntry" : " trustedCertEntry"));
    }
    PrivateKey key = (PrivateKey) store.getKey(args[2], null);
    Signature signature = Signature.getInstance("SHA256withRSA", provider);
    signature.initSign(key);
    signature.update(Files.readAllBytes(Path.of(args[3])));
    Files.write(Path.of(args[4]), signature.sign());
  }
}
